#!/usr/bin/env node
// ort_run.js - run or time an ONNX model with ONNX Runtime (onnxruntime-node),
// the independent judge for lowrankd's tests and benches.
//
//   node ort_run.js run MODEL.onnx INPUT.npy OUTPUT.npy [--threads N]
//       Feeds INPUT.npy to the model's first graph input and writes its first
//       graph output to OUTPUT.npy ('<f4', C order, format version 1.0).
//   node ort_run.js bench MODEL.onnx --input-shape 1,3,224,224
//                   [--threads N] [--repeat N] [--warmup N] [--seed N]
//       Runs a seeded random standard-normal input and prints one JSON line:
//       {"median_ms":..,"p10_ms":..,"p90_ms":..,"peak_rss_bytes":..}
//       peak_rss_bytes is VmHWM of this process at the end.
//   node ort_run.js compare A.onnx B.onnx --input-shape 1,3,224,224
//                   [--threads N] [--rounds N] [--ms N] [--seed N]
//       Times both in turns in one process (see cmdCompare) and prints
//       {"a_p10_ms":..,"b_p10_ms":..,"ratio":..,"rounds":..}, ratio being
//       the median over rounds of A's time over B's.
//
// Session: intraOpNumThreads=N (default 1), interOpNumThreads=1,
// graphOptimizationLevel 'all', executionMode 'sequential'.
// Any error: message on stderr, exit status 1 (2 for usage errors).
'use strict';

const fs = require('fs');
const path = require('path');

const PROG = 'ort_run';

class UsageError extends Error {}

const fmtShape = (s) => (s.length === 1 ? `(${s[0]},)` : `(${s.join(', ')})`);

function usage() {
  return [
    'usage: node ort_run.js run MODEL.onnx INPUT.npy OUTPUT.npy [--threads N]',
    '       node ort_run.js bench MODEL.onnx --input-shape D0,D1,... [--threads N]',
    '                            [--repeat N] [--warmup N] [--seed N]',
    '       node ort_run.js compare A.onnx B.onnx --input-shape D0,D1,... [--threads N]',
    '                            [--rounds N] [--ms N] [--seed N]',
  ].join('\n');
}

// ---------------------------------------------------------------- .npy I/O

const NPY_MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

// Parse the header dict of a .npy file, e.g.
//   {'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 224, 224), }
function parseNpyHeader(text, file) {
  const bad = (why) => new Error(`${file}: bad .npy header (${why}): ${JSON.stringify(text)}`);
  const t = text.trim();
  if (!t.startsWith('{') || !t.endsWith('}')) throw bad('not a dict');
  const body = t.slice(1, -1);
  const re = /\s*'([a-z_]+)'\s*:\s*('(?:[^'\\]*)'|True|False|\([^()]*\))\s*(,|$)/y;
  const out = {};
  let pos = 0;
  while (pos < body.length) {
    if (/^\s*$/.test(body.slice(pos))) break;
    re.lastIndex = pos;
    const m = re.exec(body);
    if (!m) throw bad('cannot parse');
    if (Object.prototype.hasOwnProperty.call(out, m[1])) throw bad(`duplicate key ${m[1]}`);
    out[m[1]] = m[2];
    pos = re.lastIndex;
    if (m[3] === '') break;
  }
  if (pos < body.length && !/^\s*$/.test(body.slice(pos))) throw bad('trailing text');
  const keys = Object.keys(out).sort().join(',');
  if (keys !== 'descr,fortran_order,shape') throw bad(`keys ${keys}`);

  const descrLit = out.descr;
  if (!descrLit.startsWith("'")) throw bad('descr is not a string');
  const descr = descrLit.slice(1, -1);

  if (out.fortran_order === 'True') {
    throw new Error(`${file}: Fortran-order arrays are not supported (C order only)`);
  }
  if (out.fortran_order !== 'False') throw bad('fortran_order');

  const shLit = out.shape;
  if (!shLit.startsWith('(')) throw bad('shape is not a tuple');
  const inner = shLit.slice(1, -1).trim();
  let shape = [];
  if (inner !== '') {
    const parts = inner.split(',').map((s) => s.trim());
    if (parts[parts.length - 1] === '') parts.pop(); // "(5,)" or "(2, 3,)"
    for (const p of parts) {
      if (!/^[0-9]+$/.test(p)) throw bad(`shape element ${JSON.stringify(p)}`);
      shape.push(Number(p));
    }
    if (parts.length === 1 && !/,\s*$/.test(inner)) throw bad('1-d shape needs a trailing comma');
  }
  return { descr, shape };
}

// Read a float .npy file; returns {shape, data: Float32Array}.
function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.length < 10 || !buf.subarray(0, 6).equals(NPY_MAGIC)) {
    throw new Error(`${file}: not a .npy file (bad magic)`);
  }
  const major = buf[6];
  const minor = buf[7];
  let hlen;
  let hstart;
  if (major === 1 && minor === 0) {
    hlen = buf.readUInt16LE(8);
    hstart = 10;
  } else if (major === 2 && minor === 0) {
    if (buf.length < 12) throw new Error(`${file}: truncated .npy header`);
    hlen = buf.readUInt32LE(8);
    hstart = 12;
  } else {
    throw new Error(`${file}: unsupported .npy format version ${major}.${minor} (need 1.0 or 2.0)`);
  }
  const dstart = hstart + hlen;
  if (dstart > buf.length) throw new Error(`${file}: truncated .npy header`);
  const htext = buf.toString('latin1', hstart, dstart);
  if (!htext.endsWith('\n')) throw new Error(`${file}: .npy header does not end with a newline`);
  const { descr, shape } = parseNpyHeader(htext, file);

  let itemsize;
  if (descr === '<f4') itemsize = 4;
  else if (descr === '<f8') itemsize = 8;
  else {
    throw new Error(`${file}: unsupported dtype '${descr}' (only '<f4' and '<f8' are accepted)`);
  }
  const count = shape.reduce((a, b) => a * b, 1);
  if (!Number.isSafeInteger(count * itemsize)) throw new Error(`${file}: shape too large`);
  const need = count * itemsize;
  const have = buf.length - dstart;
  if (have !== need) {
    throw new Error(`${file}: data is ${have} bytes, shape ${fmtShape(shape)} ` +
                    `of ${descr} needs ${need}`);
  }
  const data = new Float32Array(count);
  const dv = new DataView(buf.buffer, buf.byteOffset + dstart, need);
  if (itemsize === 4) {
    for (let i = 0; i < count; i++) data[i] = dv.getFloat32(i * 4, true);
  } else {
    for (let i = 0; i < count; i++) data[i] = dv.getFloat64(i * 8, true); // rounds to f32
  }
  return { shape, data };
}

// Write a float32 array as .npy version 1.0 ('<f4', C order), atomically.
function writeNpy(file, shape, data) {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) {
    throw new Error(`internal: shape ${fmtShape(shape)} does not match ${data.length} values`);
  }
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${fmtShape(shape)}, }`;
  // magic(6) + version(2) + len(2) + header + '\n', padded to a multiple of 64
  const base = 10 + header.length + 1;
  header += ' '.repeat((64 - (base % 64)) % 64) + '\n';
  if (header.length > 65535) throw new Error('shape too long for .npy version 1.0');
  const pre = Buffer.alloc(10);
  NPY_MAGIC.copy(pre, 0);
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  const body = Buffer.alloc(count * 4);
  for (let i = 0; i < count; i++) body.writeFloatLE(data[i], i * 4);
  const tmp = `${file}.tmp.${process.pid}`;
  try {
    fs.writeFileSync(tmp, Buffer.concat([pre, Buffer.from(header, 'latin1'), body]));
    fs.renameSync(tmp, file);
  } catch (e) {
    try { fs.unlinkSync(tmp); } catch (_) { /* ignore */ }
    throw e;
  }
}

// ---------------------------------------------------------------- helpers

function parsePosInt(name, s, min) {
  if (s === undefined) throw new UsageError(`${name} needs a value`);
  if (!/^[0-9]+$/.test(s)) throw new UsageError(`${name}: not a non-negative integer: ${s}`);
  const v = Number(s);
  if (!Number.isSafeInteger(v) || v < min) throw new UsageError(`${name}: must be >= ${min}: ${s}`);
  return v;
}

// The integer option `name` (>= min), or dflt when absent.
function intOpt(opt, name, min, dflt) {
  return name in opt ? parsePosInt(name, opt[name], min) : dflt;
}

function parseShape(s) {
  if (s === undefined) throw new UsageError('--input-shape needs a value');
  const parts = s.split(',');
  const dims = parts.map((p) => {
    if (!/^[0-9]+$/.test(p.trim()) || Number(p) < 1) {
      throw new UsageError(`--input-shape: bad dimension ${JSON.stringify(p)} in ${s}`);
    }
    return Number(p);
  });
  return dims;
}

// Split argv into positionals and --options; every option takes one value.
function parseArgs(argv, allowed) {
  const pos = [];
  const opt = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('--')) {
      let name = a;
      let val;
      const eq = a.indexOf('=');
      if (eq >= 0) {
        name = a.slice(0, eq);
        val = a.slice(eq + 1);
      } else {
        val = argv[++i];
      }
      if (!allowed.includes(name)) throw new UsageError(`unknown option ${name}`);
      if (val === undefined) throw new UsageError(`${name} needs a value`);
      opt[name] = val;
    } else {
      pos.push(a);
    }
  }
  return { pos, opt };
}

function loadOrt() {
  try {
    return require('onnxruntime-node');
  } catch (e) {
    const hint = `run 'npm install --ignore-scripts' in ${__dirname} (scripts/install-deps.sh does it)`;
    throw new Error(`cannot load onnxruntime-node: ${e.message.split('\n')[0]}; ${hint}`);
  }
}

async function createSession(ort, model, threads) {
  if (!fs.existsSync(model)) throw new Error(`${model}: no such file`);
  ort.env.logLevel = 'error';
  return ort.InferenceSession.create(path.resolve(model), {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    logSeverityLevel: 3,
  });
}

function checkInput(session, shape) {
  if (session.inputNames.length < 1) throw new Error('model has no graph input');
  const md = session.inputMetadata && session.inputMetadata[0];
  if (md && md.isTensor) {
    if (md.type !== undefined && md.type !== 'float32') {
      throw new Error(`first graph input '${session.inputNames[0]}' is ${md.type}, not float32`);
    }
    const ms = md.shape || [];
    if (ms.length > 0) {
      const ok = ms.length === shape.length &&
        ms.every((d, i) => typeof d !== 'number' || d < 0 || d === shape[i]);
      if (!ok) {
        throw new Error(`input shape ${fmtShape(shape)} does not fit graph input ` +
                        `'${session.inputNames[0]}' of shape [${ms.join(', ')}]`);
      }
    }
  }
  return session.inputNames[0];
}

function firstOutput(session, results) {
  const name = session.outputNames[0];
  const t = results[name];
  if (!t) throw new Error(`model produced no output '${name}'`);
  if (t.type !== 'float32' && t.type !== 'float64') {
    throw new Error(`first graph output '${name}' is ${t.type}, not a float tensor`);
  }
  const data = t.type === 'float32' ? t.data : Float32Array.from(t.data);
  return { shape: Array.from(t.dims), data };
}

// mulberry32 + Box-Muller: deterministic standard-normal float32 values.
function randomNormal(count, seed) {
  let s = seed >>> 0;
  const u32 = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0);
  };
  const uniform = () => (u32() + 0.5) / 4294967296; // in (0, 1)
  const out = new Float32Array(count);
  for (let i = 0; i < count; i += 2) {
    const r = Math.sqrt(-2 * Math.log(uniform()));
    const th = 2 * Math.PI * uniform();
    out[i] = r * Math.cos(th);
    if (i + 1 < count) out[i + 1] = r * Math.sin(th);
  }
  return out;
}

// Percentile with linear interpolation (numpy's default method).
function percentile(sorted, q) {
  if (sorted.length === 1) return sorted[0];
  const x = (q / 100) * (sorted.length - 1);
  const lo = Math.floor(x);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (x - lo);
}

function peakRssBytes() {
  const st = fs.readFileSync('/proc/self/status', 'utf8');
  const m = /^VmHWM:\s+([0-9]+)\s+kB$/m.exec(st);
  if (!m) throw new Error('no VmHWM in /proc/self/status');
  return Number(m[1]) * 1024;
}

// ---------------------------------------------------------------- commands

async function cmdRun(argv) {
  const { pos, opt } = parseArgs(argv, ['--threads']);
  if (pos.length !== 3) throw new UsageError('run needs MODEL.onnx INPUT.npy OUTPUT.npy');
  const [model, inFile, outFile] = pos;
  const threads = intOpt(opt, '--threads', 1, 1);
  const input = readNpy(inFile);
  const ort = loadOrt();
  const session = await createSession(ort, model, threads);
  const inName = checkInput(session, input.shape);
  const feeds = { [inName]: new ort.Tensor('float32', input.data, input.shape) };
  const results = await session.run(feeds);
  const out = firstOutput(session, results);
  writeNpy(outFile, out.shape, out.data);
}

async function cmdBench(argv) {
  const { pos, opt } = parseArgs(argv,
    ['--input-shape', '--threads', '--repeat', '--warmup', '--seed']);
  if (pos.length !== 1) throw new UsageError('bench needs MODEL.onnx');
  if (!('--input-shape' in opt)) throw new UsageError('bench needs --input-shape');
  const model = pos[0];
  const shape = parseShape(opt['--input-shape']);
  const threads = intOpt(opt, '--threads', 1, 1);
  const repeat = intOpt(opt, '--repeat', 1, 10);
  const warmup = intOpt(opt, '--warmup', 0, 2);
  const seed = intOpt(opt, '--seed', 0, 0);

  const ort = loadOrt();
  const session = await createSession(ort, model, threads);
  const inName = checkInput(session, shape);
  const count = shape.reduce((a, b) => a * b, 1);
  const feeds = { [inName]: new ort.Tensor('float32', randomNormal(count, seed), shape) };
  const outName = session.outputNames[0];

  for (let i = 0; i < warmup; i++) await session.run(feeds, [outName]);
  const times = [];
  for (let i = 0; i < repeat; i++) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds, [outName]);
    const t1 = process.hrtime.bigint();
    times.push(Number(t1 - t0) / 1e6);
  }
  times.sort((a, b) => a - b);
  const r3 = (x) => Math.round(x * 1000) / 1000;
  const res = {
    median_ms: r3(percentile(times, 50)),
    p10_ms: r3(percentile(times, 10)),
    p90_ms: r3(percentile(times, 90)),
    peak_rss_bytes: peakRssBytes(),
  };
  process.stdout.write(JSON.stringify(res) + '\n');
}

// compare A.onnx B.onnx: both sessions in one process, timed in turns so
// that the machine's load falls on both alike. Each round runs A then B
// (B then A in odd rounds) for about --ms milliseconds each after one
// untimed run; a round's figure per model is its median run. Prints
// {"a_p10_ms", "b_p10_ms" (10th percentiles of the round figures),
//  "ratio" (median over rounds of A / B: B's speedup over A), "rounds"}.
async function cmdCompare(argv) {
  const { pos, opt } = parseArgs(argv,
    ['--input-shape', '--threads', '--rounds', '--ms', '--seed']);
  if (pos.length !== 2) throw new UsageError('compare needs A.onnx B.onnx');
  if (!('--input-shape' in opt)) throw new UsageError('compare needs --input-shape');
  const shape = parseShape(opt['--input-shape']);
  const threads = intOpt(opt, '--threads', 1, 1);
  const rounds = intOpt(opt, '--rounds', 1, 21);
  const ms = intOpt(opt, '--ms', 1, 20);
  const seed = intOpt(opt, '--seed', 0, 0);

  const ort = loadOrt();
  const count = shape.reduce((a, b) => a * b, 1);
  const data = randomNormal(count, seed);
  const m = [];
  for (const model of pos) {
    const session = await createSession(ort, model, threads);
    const inName = checkInput(session, shape);
    const feeds = { [inName]: new ort.Tensor('float32', data, shape) };
    const outName = session.outputNames[0];
    const once = async () => {
      const t0 = process.hrtime.bigint();
      await session.run(feeds, [outName]);
      return Number(process.hrtime.bigint() - t0) / 1e6;
    };
    let one = 0;
    for (let i = 0; i < 3; i++) one = await once();
    m.push({ once, n: Math.max(1, Math.min(1000, Math.ceil(ms / Math.max(one, 1e-3)))), fig: [] });
  }
  for (let r = 0; r < rounds; r++) {
    for (let j = 0; j < 2; j++) {
      const x = m[(r + j) % 2];
      await x.once();
      const t = [];
      for (let i = 0; i < x.n; i++) t.push(await x.once());
      t.sort((a, b) => a - b);
      x.fig.push(percentile(t, 50));
    }
  }
  const ratios = m[0].fig.map((a, i) => a / m[1].fig[i]).sort((a, b) => a - b);
  const p10 = (f) => percentile([...f].sort((a, b) => a - b), 10);
  const r4 = (x) => Math.round(x * 10000) / 10000;
  process.stdout.write(JSON.stringify({
    a_p10_ms: r4(p10(m[0].fig)), b_p10_ms: r4(p10(m[1].fig)),
    ratio: r4(percentile(ratios, 50)), rounds,
  }) + '\n');
}

async function main(argv) {
  const cmd = argv[0];
  if (cmd === 'run') return cmdRun(argv.slice(1));
  if (cmd === 'bench') return cmdBench(argv.slice(1));
  if (cmd === 'compare') return cmdCompare(argv.slice(1));
  if (cmd === '-h' || cmd === '--help') {
    process.stdout.write(usage() + '\n');
    return undefined;
  }
  throw new UsageError(cmd === undefined ? 'no command' : `unknown command ${cmd}`);
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    () => { process.exitCode = 0; },
    (e) => {
      if (e instanceof UsageError) {
        process.stderr.write(`${PROG}: ${e.message}\n${usage()}\n`);
        process.exitCode = 2;
      } else {
        const msg = (e && e.message) ? e.message : String(e);
        process.stderr.write(`${PROG}: ${msg}\n`);
        process.exitCode = 1;
      }
    });
}

module.exports = { readNpy, writeNpy, parseNpyHeader, randomNormal, percentile };
