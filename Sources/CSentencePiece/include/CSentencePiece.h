// A small C interface over Debian's libsentencepiece (C++), so Swift can call it.
// Every function is exception-safe: C++ errors become NULL / -1 returns.
#ifndef CSENTENCEPIECE_H
#define CSENTENCEPIECE_H
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct spm_processor spm_processor;
typedef struct spm_pieces spm_pieces;

/// Loads a SentencePiece model; on failure returns NULL and writes the reason into `error`.
spm_processor *spm_load(const char *path, char *error, size_t error_capacity);

/// Loads a model with its normalizer's `add_dummy_prefix` forced off when `add_dummy_prefix` is 0
/// (what transformers' non-legacy T5Tokenizer does by editing the model proto), unchanged otherwise.
spm_processor *spm_load_with_options(const char *path, int add_dummy_prefix, char *error, size_t error_capacity);

void spm_free(spm_processor *processor);

/// Number of pieces in the model's vocabulary.
int spm_piece_count(const spm_processor *processor);

/// Encodes UTF-8 text into ids. Returns the number of ids (which may exceed `capacity`; then only
/// `capacity` were written and the caller retries with a larger buffer), or -1 on error.
int spm_encode_ids(const spm_processor *processor, const char *text, size_t length, int *ids, int capacity);

/// Encodes UTF-8 text into pieces (SentencePiece's `Encode(text, &pieces)`, Python's `encode(out_type=str)`):
/// unknown stretches come back as their normalized text. NULL on error; free with `spm_pieces_free`.
spm_pieces *spm_encode_pieces(const spm_processor *processor, const char *text, size_t length);
int spm_pieces_count(const spm_pieces *pieces);
/// The bytes of piece `index` (not NUL-terminated; `*length` receives the byte count), valid until freed.
const char *spm_pieces_piece(const spm_pieces *pieces, int index, size_t *length);
void spm_pieces_free(spm_pieces *pieces);

/// Copies the piece of `id` (UTF-8, NUL-terminated) into `buffer`; returns its byte length or -1.
int spm_id_to_piece(const spm_processor *processor, int id, char *buffer, size_t capacity);

/// The id of `piece` (`length` bytes), or the unknown id when it is not in the vocabulary.
int spm_piece_to_id(const spm_processor *processor, const char *piece, size_t length);

/// Special ids (-1 when the model defines none).
int spm_unk_id(const spm_processor *processor);
int spm_eos_id(const spm_processor *processor);
int spm_pad_id(const spm_processor *processor);

#ifdef __cplusplus
}
#endif
#endif
