#!/usr/bin/env node
// profile_ort.js - ONNX Runtime's per-node times for one model, to set
// next to lowrank's (LR_PROFILE=1 lowrank bench ...; bench/profile.sh puts
// the two side by side by op type).
//
//   node bench/profile_ort.js MODEL.onnx --input-shape 1,3,224,224
//        [--threads N] [--repeat N] [--warmup N]
//
// Session as in tests/ort/ort_run.js (graph optimisation 'all', so ORT's
// fused nodes, e.g. Conv+Relu as one "FusedConv", count as their base op)
// plus enableProfiling. Runs WARMUP untimed and REPEAT profiled passes and
// prints one JSON object: {"total_ms": median wall ms, "ops": {op_type:
// sum of its nodes' ms}, "nodes": [[name, op_type, median ms per run],
// ...]}. The profile
// file ORT writes is removed. Needs LR_ORT_DIR (default tests/ort) for the
// onnxruntime-node module.
'use strict';
const fs = require('fs');
const path = require('path');
const os = require('os');

const args = process.argv.slice(2);
const model = args[0];
let shape = [1, 3, 224, 224], threads = 1, repeat = 10, warmup = 2;
for (let i = 1; i < args.length; i += 2) {
  const v = args[i + 1];
  if (args[i] === '--input-shape') shape = v.split(',').map(Number);
  else if (args[i] === '--threads') threads = Number(v);
  else if (args[i] === '--repeat') repeat = Number(v);
  else if (args[i] === '--warmup') warmup = Number(v);
  else { console.error(`profile_ort: unknown option ${args[i]}`); process.exit(2); }
}
const ortDir = process.env.LR_ORT_DIR || path.join(__dirname, '..', 'tests', 'ort');
const ort = require(path.join(path.resolve(ortDir), 'node_modules', 'onnxruntime-node'));

(async () => {
  ort.env.logLevel = 'error';
  const prefix = path.join(os.tmpdir(), `ortprof.${process.pid}`);
  const s = await ort.InferenceSession.create(path.resolve(model), {
    intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all',
    executionMode: 'sequential', logSeverityLevel: 3,
    enableProfiling: true, profileFilePrefix: prefix,
  });
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let x = 12345;
  for (let i = 0; i < n; i++) { x = (x * 1103515245 + 12345) >>> 0; data[i] = (x / 4294967296) * 2 - 1; }
  const feeds = { [s.inputNames[0]]: new ort.Tensor('float32', data, shape) };
  for (let i = 0; i < warmup; i++) await s.run(feeds);
  const walls = [];
  for (let i = 0; i < repeat; i++) {
    const t0 = process.hrtime.bigint();
    await s.run(feeds);
    walls.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const file = s.endProfiling ? s.endProfiling() : null;
  let prof = file && fs.existsSync(file) ? file : null;
  if (!prof) {
    const d = path.dirname(prefix), b = path.basename(prefix);
    const c = fs.readdirSync(d).filter((f) => f.startsWith(b)).map((f) => path.join(d, f));
    const c2 = fs.readdirSync('.').filter((f) => f.startsWith(b));
    prof = c[0] || c2[0];
  }
  const ev = JSON.parse(fs.readFileSync(prof, 'utf8'));
  fs.unlinkSync(prof);
  // Node events of the last REPEAT runs: "cat":"Node", name ends in _kernel_time.
  const runs = ev.filter((e) => e.cat === 'Session' && e.name === 'model_run');
  const t0 = runs.length > repeat ? runs[runs.length - repeat].ts : 0;
  // Each node's median over the runs (a mean puts a run's stall on
  // whichever node it hit), and per op type the sum of those medians.
  const ops = {}, samples = {};
  for (const e of ev) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time') || e.ts < t0) continue;
    const op = (e.args && e.args.op_name) || '?';
    const nm = e.name.replace(/_kernel_time$/, '');
    if (!samples[nm]) samples[nm] = [op, []];
    samples[nm][1].push(e.dur / 1000);
  }
  const nodes = [];
  for (const [nm, [op, v]] of Object.entries(samples)) {
    v.sort((a, b) => a - b);
    const h = v.length >> 1;
    // A node that ran k times per run (none here) shows k runs' worth.
    const med = (v.length % 2 ? v[h] : (v[h - 1] + v[h]) / 2) * Math.max(1, Math.round(v.length / repeat));
    ops[op] = (ops[op] || 0) + med;
    nodes.push([nm, op, med]);
  }
  walls.sort((a, b) => a - b);
  console.log(JSON.stringify({ total_ms: walls[walls.length >> 1], ops, nodes: Object.values(nodes) }));
})().catch((e) => { console.error(`profile_ort: ${e.message}`); process.exit(1); });
