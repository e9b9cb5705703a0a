#!/usr/bin/env node
// ort_cases.js - runs ONNX backend test cases (test_*/model.onnx with
// test_data_set_N/{input,output}_K.pb) through ONNX Runtime, to learn which
// cases the independent judge passes. lowrank's conformance runner is held
// to that set (tests/conformance/ort_pass.txt).
//
//   node ort_cases.js DIR...        (e.g. /usr/share/libonnx-testdata/data/node)
//
// Prints one line per case: "pass LABEL", "fail LABEL: why" or
// "error LABEL: why" (ORT refused the model or a run), LABEL being
// "<dir name>/<case>" as lr-conformance prints it. Floats match when
// |got - want| <= 1e-4 + 1e-4 |want| (NaN matches NaN), other types exactly.
// Exit status 0 unless a DIR cannot be read.
'use strict';

const fs = require('fs');
const path = require('path');

// ------------------------------------------------------------ TensorProto

// Reads a varint at buf[pos]; returns [BigInt value, next pos].
function varint(buf, pos) {
  let v = 0n;
  let shift = 0n;
  for (;;) {
    if (pos >= buf.length) throw new Error('truncated varint');
    const b = buf[pos++];
    v |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return [v, pos];
    shift += 7n;
    if (shift > 70n) throw new Error('varint too long');
  }
}

const toSigned = (v) => BigInt.asIntN(64, v);

// Decodes the fields of onnx.TensorProto that test data uses.
function parseTensor(buf) {
  const t = { dims: [], dataType: 0, name: '', raw: null, floats: [], doubles: [], i32: [], i64: [], u64: [], strings: [] };
  let pos = 0;
  while (pos < buf.length) {
    let key;
    [key, pos] = varint(buf, pos);
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    const packed = (read) => {
      let len;
      [len, pos] = varint(buf, pos);
      const end = pos + Number(len);
      while (pos < end) pos = read(pos);
    };
    if (wire === 2) {
      let len;
      if (field === 1 || field === 5 || field === 7 || field === 11) {
        const dest = field === 1 ? t.dims : field === 5 ? t.i32 : field === 7 ? t.i64 : t.u64;
        packed((p) => {
          let v;
          [v, p] = varint(buf, p);
          dest.push(field === 11 ? v : toSigned(v));
          return p;
        });
        continue;
      }
      if (field === 4) { packed((p) => { t.floats.push(buf.readFloatLE(p)); return p + 4; }); continue; }
      if (field === 10) { packed((p) => { t.doubles.push(buf.readDoubleLE(p)); return p + 8; }); continue; }
      [len, pos] = varint(buf, pos);
      const bytes = buf.subarray(pos, pos + Number(len));
      pos += Number(len);
      if (field === 8) t.name = bytes.toString('utf8');
      else if (field === 9) t.raw = Buffer.from(bytes);
      else if (field === 6) t.strings.push(bytes.toString('utf8'));
    } else if (wire === 0) {
      let v;
      [v, pos] = varint(buf, pos);
      if (field === 1) t.dims.push(toSigned(v));
      else if (field === 2) t.dataType = Number(v);
      else if (field === 5) t.i32.push(toSigned(v));
      else if (field === 7) t.i64.push(toSigned(v));
      else if (field === 11) t.u64.push(v);
    } else if (wire === 5) {
      if (field === 4) t.floats.push(buf.readFloatLE(pos));
      pos += 4;
    } else if (wire === 1) {
      if (field === 10) t.doubles.push(buf.readDoubleLE(pos));
      pos += 8;
    } else {
      throw new Error(`unsupported wire type ${wire}`);
    }
  }
  return t;
}

// ONNX data_type -> [ORT type name, typed array constructor, int32_data holds it]
const TYPES = {
  1: ['float32', Float32Array], 2: ['uint8', Uint8Array, true], 3: ['int8', Int8Array, true],
  4: ['uint16', Uint16Array, true], 5: ['int16', Int16Array, true], 6: ['int32', Int32Array, true],
  7: ['int64', BigInt64Array], 8: ['string', null], 9: ['bool', Uint8Array, true],
  10: ['float16', Uint16Array, true], 11: ['float64', Float64Array], 12: ['uint32', Uint32Array],
  13: ['uint64', BigUint64Array],
};

function toOrt(ort, t) {
  const ty = TYPES[t.dataType];
  if (!ty) throw new Error(`data type ${t.dataType} is not handled`);
  const dims = t.dims.map(Number);
  const n = dims.reduce((a, b) => a * b, 1);
  let data;
  if (ty[0] === 'string') {
    data = t.strings;
  } else if (t.raw) {
    const C = ty[1];
    const copy = new Uint8Array(t.raw); // aligned copy
    data = new C(copy.buffer, 0, copy.byteLength / C.BYTES_PER_ELEMENT);
  } else {
    const C = ty[1];
    const src = t.dataType === 1 ? t.floats : t.dataType === 11 ? t.doubles
      : t.dataType === 7 ? t.i64 : t.dataType === 12 || t.dataType === 13 ? t.u64 : t.i32;
    data = new C(n);
    for (let i = 0; i < n; i++) {
      const v = src[i];
      data[i] = C === BigInt64Array || C === BigUint64Array ? BigInt(v) : Number(v);
    }
  }
  if (data.length !== n) throw new Error(`${t.name || 'tensor'}: ${data.length} values for shape [${dims}]`);
  return new ort.Tensor(ty[0], data, dims);
}

// ------------------------------------------------------------ comparison

function same(got, want) {
  const g = got.data;
  const w = want.data;
  if (got.type !== want.type) return `type ${got.type}, expected ${want.type}`;
  if (got.dims.length !== want.dims.length || got.dims.some((d, i) => d !== want.dims[i])) {
    return `shape [${got.dims}], expected [${want.dims}]`;
  }
  for (let i = 0; i < w.length; i++) {
    const a = g[i];
    const b = w[i];
    if (typeof b === 'number' && (want.type === 'float32' || want.type === 'float64')) {
      if (Number.isNaN(b) ? !Number.isNaN(a) : !(a === b || Math.abs(a - b) <= 1e-4 + 1e-4 * Math.abs(b))) {
        return `element ${i}: ${a}, expected ${b}`;
      }
    } else if (a !== b) {
      return `element ${i}: ${a}, expected ${b}`;
    }
  }
  return null;
}

// ------------------------------------------------------------ cases

function listCases(dir) {
  return fs.readdirSync(dir).filter((n) => n.startsWith('test_') &&
    fs.statSync(path.join(dir, n)).isDirectory()).sort();
}

async function runCase(ort, casedir) {
  let session;
  try {
    session = await ort.InferenceSession.create(path.join(casedir, 'model.onnx'),
      { intraOpNumThreads: 1, interOpNumThreads: 1, logSeverityLevel: 4 });
  } catch (e) {
    return ['error', String(e.message).split('\n')[0].slice(0, 200)];
  }
  const sets = fs.readdirSync(casedir).filter((n) => n.startsWith('test_data_set_')).sort();
  if (sets.length === 0) return ['error', 'no test data'];
  for (const s of sets) {
    const sd = path.join(casedir, s);
    const pbs = (stem) => fs.readdirSync(sd).filter((n) => n.startsWith(stem) && n.endsWith('.pb'))
      .sort((a, b) => parseInt(a.slice(stem.length), 10) - parseInt(b.slice(stem.length), 10));
    const feeds = {};
    try {
      const ins = pbs('input_');
      ins.forEach((f, k) => {
        const t = parseTensor(fs.readFileSync(path.join(sd, f)));
        const name = t.name && session.inputNames.includes(t.name) ? t.name : session.inputNames[k];
        feeds[name] = toOrt(ort, t);
      });
      const outs = pbs('output_');
      const res = await session.run(feeds);
      for (let k = 0; k < outs.length; k++) {
        const t = parseTensor(fs.readFileSync(path.join(sd, outs[k])));
        const name = t.name && session.outputNames.includes(t.name) ? t.name : session.outputNames[k];
        const why = same(res[name], toOrt(ort, t));
        if (why) return ['fail', `${s} output ${name}: ${why}`];
      }
    } catch (e) {
      return ['error', `${s}: ${String(e.message).split('\n')[0].slice(0, 200)}`];
    }
  }
  return ['pass', ''];
}

async function main() {
  const dirs = process.argv.slice(2);
  if (dirs.length === 0) {
    process.stderr.write('usage: node ort_cases.js DIR...\n');
    process.exit(2);
  }
  const ort = require('onnxruntime-node');
  ort.env.logLevel = 'fatal';
  for (const dir of dirs) {
    const top = path.basename(path.resolve(dir));
    for (const c of listCases(dir)) {
      const [st, why] = await runCase(ort, path.join(dir, c));
      process.stdout.write(`${st} ${top}/${c}${why ? ': ' + why : ''}\n`);
    }
  }
}

main().catch((e) => {
  process.stderr.write(`ort_cases: ${e.message}\n`);
  process.exit(1);
});
