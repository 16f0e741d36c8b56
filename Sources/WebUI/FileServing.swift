import Foundation
import Hummingbird
import Safetensors

/// The only files the server sends: the page's own resources (a fixed list read at start) and files directly in
/// the samples folder. A name with a path separator, `..` (also percent-encoded), a leading dot or a NUL is refused,
/// and so is a file whose real path (symlinks resolved) is outside the samples folder.
enum FileServing {
    /// The page's files (index.html, app.js, style.css), by name.
    static func pageFiles() throws -> [String: (bytes: [UInt8], type: String)] {
        guard let folder = Bundle.module.url(forResource: "page", withExtension: nil) else {
            throw APIError(.internalServerError, "the web UI's page resources are missing from the build")
        }
        var files: [String: (bytes: [UInt8], type: String)] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: folder.path) where !name.hasPrefix(".") {
            files[name] = (try SmallFile.read(folder.appendingPathComponent(name).path), contentType(name))
        }
        return files
    }

    static func contentType(_ name: String) -> String {
        switch (name as NSString).pathExtension.lowercased() {
        case "html": return "text/html; charset=utf-8"
        case "css": return "text/css; charset=utf-8"
        case "js": return "text/javascript; charset=utf-8"
        case "json": return "application/json; charset=utf-8"
        case "png": return "image/png"
        case "mp4": return "video/mp4"
        case "gif": return "image/gif"
        default: return "application/octet-stream"
        }
    }

    /// The one file name that `raw` (a path's last part as sent, maybe percent-encoded) may name, or why not.
    static func checkedName(_ raw: Substring) throws -> String {
        guard let name = String(raw).removingPercentEncoding else {
            throw APIError.field("path", "not valid percent-encoding")
        }
        guard !name.isEmpty, name != ".", name != "..", !name.contains("/"), !name.contains("\\"),
              !name.contains("\0"), !name.hasPrefix(".") else {
            throw APIError.field("path", "'\(PrintableText.quote(name))' is not a file name in the samples folder (no folders, '..' or hidden names)")
        }
        return name
    }

    /// The path of `name` in `folder` after resolving symlinks, when it is a regular file still inside `folder`.
    static func containedFile(_ name: String, in folder: String) throws -> String {
        let candidate = (folder as NSString).appendingPathComponent(name)
        guard let real = realPath(candidate) else { throw APIError.notFound("no file \(name) in the samples folder") }
        guard (real as NSString).deletingLastPathComponent == folder else {
            throw APIError(.forbidden, "\(name) points outside the samples folder")
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: real, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw APIError.notFound("no file \(name) in the samples folder")
        }
        return real
    }

    private static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// The file, whole or the one byte range a `Range: bytes=` header asks for (what a video element sends to seek).
    static func response(file path: String, range: String?) throws -> Response {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw APIError.notFound("cannot open \((path as NSString).lastPathComponent)") }
        let size = Int((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0)
        var headers: HTTPFields = [.contentType: contentType(path), .acceptRanges: "bytes", .cacheControl: "no-cache"]
        var status = HTTPResponse.Status.ok
        var lower = 0, upper = size - 1
        if let range, let (a, b) = byteRange(range, size: size) {
            (lower, upper) = (a, b)
            status = .partialContent
            headers[.contentRange] = "bytes \(a)-\(b)/\(size)"
        } else if range != nil {
            try? handle.close()
            return Response(status: .rangeNotSatisfiable, headers: [.contentRange: "bytes */\(size)"])
        }
        let length = max(0, upper - lower + 1), offset = lower
        headers[.contentLength] = String(length)
        return Response(status: status, headers: headers, body: ResponseBody(contentLength: length) { writer in
            defer { try? handle.close() }
            try handle.seek(toOffset: UInt64(offset))
            var remaining = length
            while remaining > 0 {
                let chunk = try handle.read(upToCount: min(remaining, 1 << 20)) ?? Data()
                if chunk.isEmpty { break }
                remaining -= chunk.count
                try await writer.write(ByteBuffer(bytes: chunk))
            }
            try await writer.finish(nil)
        })
    }

    /// `bytes=a-b`, `bytes=a-` or `bytes=-n` within a file of `size` bytes; nil for anything else.
    static func byteRange(_ header: String, size: Int) -> (Int, Int)? {
        guard header.hasPrefix("bytes="), size > 0 else { return nil }
        let spec = header.dropFirst("bytes=".count)
        guard !spec.contains(","), let dash = spec.firstIndex(of: "-") else { return nil }
        let first = spec[..<dash], last = spec[spec.index(after: dash)...]
        if first.isEmpty {
            guard let n = Int(last), n > 0 else { return nil }
            return (max(0, size - n), size - 1)
        }
        guard let a = Int(first), a < size else { return nil }
        guard !last.isEmpty else { return (a, size - 1) }
        guard let b = Int(last), b >= a else { return nil }
        return (a, min(b, size - 1))
    }
}
