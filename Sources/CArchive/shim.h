#include <archive.h>
#include <archive_entry.h>
// zlib's CRC-32: libarchive does not check a gzip member's CRC, so the extractor does.
#include <zlib.h>
