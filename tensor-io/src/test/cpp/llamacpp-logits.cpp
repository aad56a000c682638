// Evaluates one sequence of token ids with llama.cpp and writes the logits of every position, so
// tests can compare sparkprune's forward with an independent implementation on the GGUF that
// llama.cpp's own converter wrote. Built by bin/setup-llamacpp-reference against the llama.h of
// the release whose prebuilt libraries it links.
//
// usage: llamacpp-logits BACKEND_DIR MODEL.gguf TOKENS OUT
//   BACKEND_DIR  folder of the ggml CPU backend libraries (loaded at run time)
//   TOKENS       text file of whitespace-separated token ids
//   OUT          written as little-endian float32 [tokens x vocab], row-major
// Prints "tokens vocab" on success; exits 1 with one line on stderr otherwise.
#include <cstdio>
#include <fstream>
#include <vector>

#include "ggml-backend.h"
#include "llama.h"

static int fail(const char * what) {
  std::fprintf(stderr, "llamacpp-logits: %s\n", what);
  return 1;
}

// llama.cpp logs every tensor at load; only errors matter to the tests.
static void quiet(ggml_log_level level, const char * text, void *) {
  if (level == GGML_LOG_LEVEL_ERROR) {
    std::fputs(text, stderr);
  }
}

int main(int argc, char ** argv) {
  if (argc != 5) {
    return fail("usage: llamacpp-logits BACKEND_DIR MODEL.gguf TOKENS OUT");
  }
  std::vector<llama_token> tokens;
  std::ifstream in(argv[3]);
  for (long id; in >> id;) {
    tokens.push_back(static_cast<llama_token>(id));
  }
  if (tokens.empty() || !in.eof()) {
    return fail("cannot read token ids: expected whitespace-separated integers");
  }
  llama_log_set(quiet, nullptr);
  ggml_backend_load_all_from_path(argv[1]);
  llama_backend_init();

  llama_model_params mparams = llama_model_default_params();
  mparams.n_gpu_layers = 0;
  llama_model * model = llama_model_load_from_file(argv[2], mparams);
  if (model == nullptr) {
    return fail("cannot load the model");
  }
  const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
  const int n = static_cast<int>(tokens.size());
  for (llama_token id : tokens) {
    if (id < 0 || id >= n_vocab) {
      return fail("token id outside the vocabulary");
    }
  }

  // One ubatch over the whole sequence, F32 KV cache and no flash attention: the comparison is
  // about the model, not about cache quantization or kernel choices.
  llama_context_params cparams = llama_context_default_params();
  cparams.n_ctx = static_cast<uint32_t>(n);
  cparams.n_batch = static_cast<uint32_t>(n);
  cparams.n_ubatch = static_cast<uint32_t>(n);
  cparams.n_seq_max = 1;
  cparams.n_threads = 1;
  cparams.n_threads_batch = 1;
  cparams.type_k = GGML_TYPE_F32;
  cparams.type_v = GGML_TYPE_F32;
  cparams.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
  cparams.swa_full = true;
  cparams.no_perf = true;
  llama_context * ctx = llama_init_from_model(model, cparams);
  if (ctx == nullptr) {
    return fail("cannot create a context");
  }

  llama_batch batch = llama_batch_init(n, 0, 1);
  for (int i = 0; i < n; i++) {
    batch.token[i] = tokens[i];
    batch.pos[i] = i;
    batch.n_seq_id[i] = 1;
    batch.seq_id[i][0] = 0;
    batch.logits[i] = 1;
  }
  batch.n_tokens = n;
  if (llama_decode(ctx, batch) != 0) {
    return fail("llama_decode failed");
  }

  std::ofstream out(argv[4], std::ios::binary);
  for (int i = 0; i < n; i++) {
    const float * row = llama_get_logits_ith(ctx, i);
    if (row == nullptr) {
      return fail("no logits for a position");
    }
    out.write(reinterpret_cast<const char *>(row), static_cast<std::streamsize>(sizeof(float)) * n_vocab);
  }
  out.close();
  if (!out) {
    return fail("cannot write the logits");
  }
  std::printf("%d %d\n", n, n_vocab);

  llama_batch_free(batch);
  llama_free(ctx);
  llama_model_free(model);
  llama_backend_free();
  return 0;
}
