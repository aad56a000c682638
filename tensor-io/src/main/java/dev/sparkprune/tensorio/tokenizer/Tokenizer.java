package dev.sparkprune.tensorio.tokenizer;

/** Text to token ids and back, as the model's Hugging Face tokenizer does. */
public interface Tokenizer {
  /** Encodes text; with {@code addSpecialTokens}, BOS/EOS as the tokenizer config asks. */
  int[] encode(String text, boolean addSpecialTokens);

  /** Decodes ids to text, skipping special tokens. */
  String decode(int[] ids);

  int vocabSize();

  /** The beginning-of-sequence id, or -1 if the tokenizer has none. */
  int bosId();

  /** The end-of-sequence id, or -1 if the tokenizer has none. */
  int eosId();
}
