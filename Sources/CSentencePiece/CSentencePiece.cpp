#include "CSentencePiece.h"

#include <sentencepiece_processor.h>
#include <cstring>
#include <exception>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

struct spm_processor {
    sentencepiece::SentencePieceProcessor processor;
};

struct spm_pieces {
    std::vector<std::string> pieces;
};

static void write_error(char *error, size_t capacity, const std::string &message) {
    if (!error || capacity == 0) return;
    std::strncpy(error, message.c_str(), capacity - 1);
    error[capacity - 1] = '\0';
}

// Protobuf merges repeated occurrences of a message field, and the last scalar wins; so appending
// `normalizer_spec { add_dummy_prefix: false }` (ModelProto field 3, NormalizerSpec field 3) to the serialized
// model is exactly Python's `model.normalizer_spec.MergeFrom(NormalizerSpec(add_dummy_prefix=False))`.
static const char kNoDummyPrefix[] = {0x1A, 0x02, 0x18, 0x00};

extern "C" spm_processor *spm_load_with_options(const char *path, int add_dummy_prefix, char *error,
                                                 size_t error_capacity) {
    try {
        auto p = std::make_unique<spm_processor>();
        sentencepiece::util::Status status;
        if (add_dummy_prefix) {
            status = p->processor.Load(path);
        } else {
            std::ifstream file(path, std::ios::binary);
            if (!file) {
                write_error(error, error_capacity, "cannot read the file");
                return nullptr;
            }
            std::ostringstream bytes;
            bytes << file.rdbuf();
            std::string serialized = bytes.str();
            serialized.append(kNoDummyPrefix, sizeof kNoDummyPrefix);
            status = p->processor.LoadFromSerializedProto(serialized);
        }
        if (!status.ok()) {
            write_error(error, error_capacity, status.ToString());
            return nullptr;
        }
        return p.release();
    } catch (const std::exception &e) {
        write_error(error, error_capacity, e.what());
        return nullptr;
    }
}

extern "C" spm_processor *spm_load(const char *path, char *error, size_t error_capacity) {
    return spm_load_with_options(path, 1, error, error_capacity);
}

extern "C" void spm_free(spm_processor *processor) { delete processor; }

extern "C" int spm_piece_count(const spm_processor *processor) {
    return processor->processor.GetPieceSize();
}

extern "C" int spm_encode_ids(const spm_processor *processor, const char *text, size_t length, int *ids, int capacity) {
    try {
        std::vector<int> out;
        const auto status = processor->processor.Encode((text ? std::string(text, length) : std::string()), &out);
        if (!status.ok()) return -1;
        const int n = static_cast<int>(out.size());
        for (int i = 0; i < n && i < capacity; ++i) ids[i] = out[i];
        return n;
    } catch (const std::exception &) {
        return -1;
    }
}

extern "C" spm_pieces *spm_encode_pieces(const spm_processor *processor, const char *text, size_t length) {
    try {
        auto result = std::make_unique<spm_pieces>();
        const auto status = processor->processor.Encode((text ? std::string(text, length) : std::string()), &result->pieces);
        if (!status.ok()) return nullptr;
        return result.release();
    } catch (const std::exception &) {
        return nullptr;
    }
}

extern "C" int spm_pieces_count(const spm_pieces *pieces) { return static_cast<int>(pieces->pieces.size()); }

extern "C" const char *spm_pieces_piece(const spm_pieces *pieces, int index, size_t *length) {
    if (index < 0 || static_cast<size_t>(index) >= pieces->pieces.size()) {
        *length = 0;
        return nullptr;
    }
    const std::string &piece = pieces->pieces[static_cast<size_t>(index)];
    *length = piece.size();
    return piece.data();
}

extern "C" void spm_pieces_free(spm_pieces *pieces) { delete pieces; }

extern "C" int spm_id_to_piece(const spm_processor *processor, int id, char *buffer, size_t capacity) {
    if (id < 0 || id >= processor->processor.GetPieceSize()) return -1;
    const std::string &piece = processor->processor.IdToPiece(id);
    if (capacity == 0) return static_cast<int>(piece.size());
    const size_t n = piece.size() < capacity - 1 ? piece.size() : capacity - 1;
    std::memcpy(buffer, piece.data(), n);
    buffer[n] = '\0';
    return static_cast<int>(piece.size());
}

extern "C" int spm_piece_to_id(const spm_processor *processor, const char *piece, size_t length) {
    try {
        return processor->processor.PieceToId(piece ? std::string(piece, length) : std::string());
    } catch (const std::exception &) {
        return processor->processor.unk_id();
    }
}

extern "C" int spm_unk_id(const spm_processor *processor) { return processor->processor.unk_id(); }
extern "C" int spm_eos_id(const spm_processor *processor) { return processor->processor.eos_id(); }
extern "C" int spm_pad_id(const spm_processor *processor) { return processor->processor.pad_id(); }
