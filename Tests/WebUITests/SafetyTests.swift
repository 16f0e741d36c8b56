import Foundation
import Hummingbird
import HummingbirdTesting
import TestSupport
import Testing
@testable import WebUI

@Suite("serve: files only from the page and the samples folder; requests only for this server")
struct SafetyTests {
    @Test("traversal is refused: .., %2e%2e, encoded slashes, absolute paths, hidden names, symlinks out")
    func traversal() async throws {
        let server = try TestServer()
        let samples = server.samples
        try Data("inside".utf8).write(to: samples.appendingPathComponent("note.json"))
        let outside = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: outside) }
        try Data("secret".utf8).write(to: outside.appendingPathComponent("secret.txt"))
        try FileManager.default.createSymbolicLink(atPath: samples.appendingPathComponent("link.mp4").path,
                                                   withDestinationPath: outside.appendingPathComponent("secret.txt").path)
        try FileManager.default.createSymbolicLink(atPath: samples.appendingPathComponent("dir").path, withDestinationPath: outside.path)
        try await server.test { client in
            #expect(String(buffer: try await client.get("/samples/note.json").body) == "inside")
            for uri in ["/samples/..", "/samples/%2e%2e", "/samples/%2E%2E", "/samples/..%2fetc%2fpasswd",
                        "/samples/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/samples/%2fetc%2fpasswd", "/samples/.hidden",
                        "/samples/..%5c..%5cwindows", "/samples/a%00b", "/samples/link.mp4", "/samples/dir",
                        "/samples/../Package.swift", "/samples/dir/secret.txt", "/%2e%2e/%2e%2e/etc/passwd",
                        "/..%2f..%2fetc%2fpasswd", "/samples/%zz"] {
                let response = try await client.get(uri)
                #expect((400..<500).contains(response.status.code), "\(uri): \(response.status)")
                #expect(!String(buffer: response.body).contains("secret"), "\(uri)")
                #expect(response.errorMessage != nil, "\(uri)")
            }
            #expect(try await client.get("/samples/link.mp4").status == .forbidden)
        }
    }

    @Test("a request from another site's page (Origin) is refused; the page's own origin is accepted")
    func origin() async throws {
        try await TestServer().test { client in
            let foreign = try await client.post("/api/generate", json: #"{"prompt": "x", "steps": 1}"#, headers: [.origin: "http://evil.example"])
            #expect(foreign.status == .forbidden)
            #expect(foreign.errorMessage?.contains("evil.example") == true)
            let rebinding = try await client.get("/api/runs", headers: [.origin: "http://evil.example:7860"])
            #expect(rebinding.status == .forbidden)
            let otherPort = try await client.get("/api/runs", headers: [.origin: "http://127.0.0.1:9999"])
            #expect(otherPort.status == .forbidden)
            let own = try await client.get("/api/runs", headers: [.origin: "http://127.0.0.1:7860"])
            #expect(own.status == .ok)
            let ownName = try await client.get("/api/runs", headers: [.origin: "http://localhost:7860"])
            #expect(ownName.status == .ok)
        }
    }

    @Test("a Host that is not the served address is refused (DNS rebinding)")
    func host() async throws {
        // The router test client always says Host: localhost; a server bound to another address must refuse it.
        try await TestServer(host: "192.0.2.7").test { client in
            let response = try await client.get("/api/models")
            #expect(response.status == .forbidden)
            #expect(response.errorMessage?.contains("localhost") == true)
        }
        let guardForLoopback = RequestOriginGuard<BasicRequestContext>(host: "127.0.0.1", port: 7860)
        for good in ["127.0.0.1:7860", "localhost:7860", "LOCALHOST:7860", "[::1]:7860", "127.0.0.1"] {
            #expect(guardForLoopback.accepts(authority: good), "\(good)")
        }
        for bad in ["evil.example:7860", "evil.example", "127.0.0.1:7861", "127.0.0.1.evil.example:7860", "localhost:7860@evil", "",
                    "192.168.1.20:7860"] {
            #expect(!guardForLoopback.accepts(authority: bad), "\(bad)")
        }
        // Bound to every interface: this machine's addresses (any IP literal) and names, never another name.
        let guardForAll = RequestOriginGuard<BasicRequestContext>(host: "0.0.0.0", port: 7860)
        for good in ["192.168.1.20:7860", "[fe80::1]:7860", "127.0.0.1:7860", "localhost:7860"] {
            #expect(guardForAll.accepts(authority: good), "\(good)")
        }
        for bad in ["evil.example:7860", "192.168.1.20:7861", "1.2.3.4.evil.example:7860"] {
            #expect(!guardForAll.accepts(authority: bad), "\(bad)")
        }
    }

    @Test("the server listens on 127.0.0.1 unless told otherwise, and the page is served from its resources")
    func defaultsAndPage() async throws {
        #expect(ServeOptions().host == "127.0.0.1")
        #expect(ServeOptions().port == 7860)
        #expect(ServeOptions().samples == "samples")
        #expect(ServeOptions.isLoopback("127.0.0.1") && ServeOptions.isLoopback("localhost") && !ServeOptions.isLoopback("0.0.0.0"))
        try await TestServer().test { client in
            let page = try await client.get("/")
            #expect(page.status == .ok)
            #expect(page.headers[.contentType] == "text/html; charset=utf-8")
            let html = String(buffer: page.body)
            #expect(html.contains("<script src=\"/app.js\">"))
            #expect(!html.contains("http://") && !html.contains("https://"), "the page loads nothing from elsewhere")
            #expect(try await client.get("/app.js").headers[.contentType] == "text/javascript; charset=utf-8")
            #expect(try await client.get("/style.css").status == .ok)
        }
    }
}
