// Runs an ONNX model in ONNX Runtime (onnxruntime-node, CPU) on one batch:
//   node run_onnx.js MODEL.onnx INPUT.bin N,C,H,W OUTPUT.bin [LEVEL]
// LEVEL is ONNX Runtime's graph optimization level: disabled (default: the
// graph's own arithmetic), basic, extended or all (its fused integer
// kernels, which round differently). INPUT.bin holds float32 values (little-endian, row-major) of that shape;
// OUTPUT.bin receives the first output as float32, and its shape goes to
// stdout as "shape D0,D1,...". Exit 1 with the error on stderr on failure.
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require(path.join(__dirname, 'node_modules', 'onnxruntime-node'));

async function main() {
  const [modelPath, inputPath, shapeText, outputPath, level] =
      process.argv.slice(2);
  if (!outputPath) throw new Error('usage: run_onnx.js MODEL INPUT N,C,H,W OUTPUT');
  const shape = shapeText.split(',').map(Number);
  const bytes = fs.readFileSync(inputPath);
  const data = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  const session = await ort.InferenceSession.create(modelPath,
      {executionProviders: ['cpu'], intraOpNumThreads: 1, graphOptimizationLevel: level || 'disabled'});
  const feeds = {[session.inputNames[0]]: new ort.Tensor('float32', data, shape)};
  const results = await session.run(feeds);
  const out = results[session.outputNames[0]];
  fs.writeFileSync(outputPath, Buffer.from(out.data.buffer, out.data.byteOffset,
                                           out.data.byteLength));
  console.log('shape ' + out.dims.join(','));
}

main().catch((e) => {
  console.error(String(e && e.message ? e.message : e));
  process.exit(1);
});
