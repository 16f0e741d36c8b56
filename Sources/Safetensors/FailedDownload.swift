/// What a file that should hold weights or an archive holds instead when a download went wrong: a Git LFS
/// pointer (a clone without `git lfs`), an HTML page (an error or login page saved under the file's name), a JSON
/// error response, or other text. Recognised from the first bytes.
public enum FailedDownload {
    /// A phrase naming what `head` (the file's first bytes, a few KB are plenty) is and what to do, or nil when
    /// it does not look like text.
    public static func describe(_ head: some Collection<UInt8>, size: Int) -> String? {
        let bytes = Array(head.prefix(4096))
        let text = String(decoding: bytes, as: UTF8.self)
        let trimmed = text.drop { $0 == "\u{FEFF}" || $0.isWhitespace }.lowercased()
        if trimmed.hasPrefix("version https://git-lfs.github.com/spec/") {
            return "a Git LFS pointer (\(size) bytes): run `git lfs pull` in its repository or download the file itself"
        }
        for tag in ["<!doctype html", "<html", "<head", "<body", "<!--", "<?xml"] where trimmed.hasPrefix(tag) {
            return "an HTML page (\(size) bytes), e.g. an error or login page: the download failed"
        }
        if trimmed.hasPrefix("{") || trimmed.hasPrefix("[") {
            return "a JSON document (\(size) bytes), e.g. an error response"
        }
        guard isText(bytes) else { return nil }
        let firstLine = trimmed.prefix { $0 != "\n" && $0 != "\r" }
        return "a text file (\(size) bytes) beginning '\(PrintableText.quote(String(firstLine), limit: 60))'"
    }

    /// UTF-8 (a sequence cut at the end of `bytes` allowed) with at least 90 % printable characters.
    private static func isText(_ bytes: [UInt8]) -> Bool {
        guard !bytes.isEmpty, !bytes.contains(0) else { return false }
        guard let text = (0...min(3, bytes.count - 1)).lazy.compactMap({
            String(validating: bytes.dropLast($0), as: UTF8.self)
        }).first else { return false }
        let scalars = text.unicodeScalars
        let printable = scalars.filter { $0 == "\t" || $0 == "\n" || $0 == "\r" || ($0.value >= 32 && $0.value != 127) }.count
        return printable * 10 >= scalars.count * 9
    }
}
