#include "CSentencePiece.h"

#include <sentencepiece_processor.h>
#include <cstring>
#include <string>
#include <vector>

struct spm_processor {
    sentencepiece::SentencePieceProcessor processor;
};

extern "C" spm_processor *spm_load(const char *path, char *error, size_t error_capacity) {
    auto *p = new spm_processor();
    const auto status = p->processor.Load(path);
    if (!status.ok()) {
        if (error && error_capacity > 0) {
            std::strncpy(error, status.ToString().c_str(), error_capacity - 1);
            error[error_capacity - 1] = '\0';
        }
        delete p;
        return nullptr;
    }
    return p;
}

extern "C" void spm_free(spm_processor *processor) { delete processor; }

extern "C" int spm_piece_count(const spm_processor *processor) {
    return processor->processor.GetPieceSize();
}

extern "C" int spm_encode_ids(const spm_processor *processor, const char *text, size_t length, int *ids, int capacity) {
    std::vector<int> out;
    const auto status = processor->processor.Encode(std::string(text, length), &out);
    if (!status.ok()) return -1;
    const int n = static_cast<int>(out.size());
    for (int i = 0; i < n && i < capacity; ++i) ids[i] = out[i];
    return n;
}

extern "C" int spm_id_to_piece(const spm_processor *processor, int id, char *buffer, size_t capacity) {
    if (id < 0 || id >= processor->processor.GetPieceSize()) return -1;
    const std::string &piece = processor->processor.IdToPiece(id);
    if (capacity == 0) return static_cast<int>(piece.size());
    const size_t n = piece.size() < capacity - 1 ? piece.size() : capacity - 1;
    std::memcpy(buffer, piece.data(), n);
    buffer[n] = '\0';
    return static_cast<int>(piece.size());
}

extern "C" int spm_piece_to_id(const spm_processor *processor, const char *piece) {
    return processor->processor.PieceToId(piece);
}

extern "C" int spm_unk_id(const spm_processor *processor) { return processor->processor.unk_id(); }
extern "C" int spm_eos_id(const spm_processor *processor) { return processor->processor.eos_id(); }
extern "C" int spm_pad_id(const spm_processor *processor) { return processor->processor.pad_id(); }
