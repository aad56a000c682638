"""Runs llama.cpp's own convert_hf_to_gguf.py on a Hugging Face archive.

usage: llamacpp_convert.py LLAMA_CPP_DIR ARCHIVE_DIR --outtype f32 --outfile OUT.gguf

The converter is used unchanged except for one thing: the test fixtures reuse stories260K's
tokenizer (a Llama SentencePiece-style tokenizer.json) under architectures whose converters
expect their own tokenizer family (Gemma and Phi-3 want tokenizer.model, Qwen a known GPT-2
pre-tokenizer). Where an architecture's own vocabulary step fails for that reason, the
vocabulary is written the way the converter writes Llama's. The vocabulary only maps ids to
text; the weights, hyperparameters and so the logits per token id are untouched.
"""
import sys
from pathlib import Path

llama_cpp = Path(sys.argv[1]).resolve()
sys.argv = [str(llama_cpp / "convert_hf_to_gguf.py")] + sys.argv[2:]
sys.path.insert(0, str(llama_cpp))

import convert_hf_to_gguf as converter  # noqa: E402  (needs the path above)

own_model_class = converter.get_model_class


def model_class_with_llama_vocab_fallback(*args, **kwargs):
    model_class = own_model_class(*args, **kwargs)
    own_set_vocab = model_class.set_vocab

    def set_vocab(self):
        try:
            own_set_vocab(self)
        except (FileNotFoundError, NotImplementedError, ValueError) as e:
            print(f"llamacpp_convert: {model_class.__name__} vocabulary step failed ({e}); "
                  "writing the tokenizer.json vocabulary as for Llama", file=sys.stderr)
            self._set_vocab_llama_hf()

    # Patched on the class itself: the converter's classes refuse subclasses without their own
    # registration properties.
    model_class.set_vocab = set_vocab
    return model_class


converter.get_model_class = model_class_with_llama_vocab_fallback
converter.main()
