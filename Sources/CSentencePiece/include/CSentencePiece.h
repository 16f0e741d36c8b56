// A small C interface over Debian's libsentencepiece (C++), so Swift can call it.
#ifndef CSENTENCEPIECE_H
#define CSENTENCEPIECE_H
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct spm_processor spm_processor;

/// Loads a SentencePiece model; on failure returns NULL and writes the reason into `error`.
spm_processor *spm_load(const char *path, char *error, size_t error_capacity);
void spm_free(spm_processor *processor);

/// Number of pieces in the model's vocabulary.
int spm_piece_count(const spm_processor *processor);

/// Encodes UTF-8 text into ids. Returns the number of ids (which may exceed `capacity`; then only
/// `capacity` were written and the caller retries with a larger buffer), or -1 on error.
int spm_encode_ids(const spm_processor *processor, const char *text, size_t length, int *ids, int capacity);

/// Copies the piece of `id` (UTF-8, NUL-terminated) into `buffer`; returns its byte length or -1.
int spm_id_to_piece(const spm_processor *processor, int id, char *buffer, size_t capacity);

/// The id of `piece`, or the unknown id when it is not in the vocabulary.
int spm_piece_to_id(const spm_processor *processor, const char *piece);

/// Special ids (-1 when the model defines none).
int spm_unk_id(const spm_processor *processor);
int spm_eos_id(const spm_processor *processor);
int spm_pad_id(const spm_processor *processor);

#ifdef __cplusplus
}
#endif
#endif
