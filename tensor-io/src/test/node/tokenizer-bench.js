// Hugging Face's side of `sparkprune bench tokenize`: the Node binding (npm tokenizers) encodes
// the same text (the first CHARS characters of the files, concatenated with a newline between)
// in one call, and in one call per line, per pass, on the same tokenizer.json. argv: tokenizer.json, chars, passes, files...
'use strict';
const fs = require('fs');
const { Tokenizer } = require('tokenizers');

const [file, chars, rounds, ...texts] = process.argv.slice(2);
const text = texts.map((t) => fs.readFileSync(t, 'utf8') + '\n').join('').substring(0, Number(chars));

async function passes(mode, encode) {
  console.log(`  ${mode}:`);
  const rates = [];
  for (let pass = -1; pass < Number(rounds); pass++) {
    const start = process.hrtime.bigint();
    const tokens = await encode();
    const s = Number(process.hrtime.bigint() - start) / 1e9;
    if (pass >= 0) {
      rates.push(tokens / s);
      console.log(`    pass ${pass + 1}: ${tokens} tokens in ${s.toFixed(3)} s = ${(tokens / s).toFixed(0)} tokens/s`);
    }
  }
  rates.sort((a, b) => a - b);
  console.log(`    median ${rates[rates.length >> 1].toFixed(0)} tokens/s, min ${rates[0].toFixed(0)}, max ${rates[rates.length - 1].toFixed(0)} over ${rounds} passes`);
}

(async () => {
  let start = process.hrtime.bigint();
  const tokenizer = Tokenizer.fromFile(file);
  const seconds = (from) => Number(process.hrtime.bigint() - from) / 1e9;
  console.log(`hf tokenize: ${file} loaded in ${seconds(start).toFixed(2)} s; ${text.length} characters`);
  const lines = text.split('\n');
  await passes('one call', async () => (await tokenizer.encode(text, null, { addSpecialTokens: false })).getLength());
  await passes(`one call per line (${lines.length} lines)`, async () => {
    let tokens = 0;
    for (const line of lines) {
      tokens += (await tokenizer.encode(line, null, { addSpecialTokens: false })).getLength();
    }
    return tokens;
  });
})();
