#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Hummingbird
import Safetensors

/// Refuses requests not addressed to this server (DNS rebinding: a page on another site whose name resolves to
/// 127.0.0.1 sends the browser here with its own name in `Host`): the Host's name must be one this server answers
/// to and its port, when given, the served port; an `Origin`, when sent, must be `http://` one of those addresses.
/// A server bound to every interface (0.0.0.0, ::) also answers to this machine's host name and to any IP address
/// literal: rebinding needs a name the attacker's DNS answers for, and an address is no name.
struct RequestOriginGuard<Context: RequestContext>: RouterMiddleware {
    /// Lowercased host names this server answers to (the bound host; for a loopback bind also 127.0.0.1,
    /// localhost and [::1]).
    let names: Set<String>
    let acceptsAddresses: Bool
    /// nil: any port (a server started on port 0 takes one the system picks).
    let port: Int?

    init(host: String, port: Int?) {
        var names: Set<String> = [Self.bracketed(host.lowercased())]
        let everyInterface = host == "0.0.0.0" || host == "::" || host == "[::]"
        if ServeOptions.isLoopback(host) || everyInterface { names.formUnion(["127.0.0.1", "localhost", "[::1]"]) }
        if everyInterface { names.insert(ProcessInfo.processInfo.hostName.lowercased()) }
        self.names = names
        acceptsAddresses = everyInterface
        self.port = port
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        // HTTPTypes carries HTTP/1's Host header as the authority.
        let host = request.head.authority
        guard let host, accepts(authority: host) else {
            throw APIError(.forbidden, "Host '\(PrintableText.quote(host ?? ""))' is not this server's address; open the page at one of \(addresses)")
        }
        if let origin = request.headers[.origin] {
            guard origin.lowercased().hasPrefix("http://"), accepts(authority: String(origin.dropFirst("http://".count))) else {
                throw APIError(.forbidden, "Origin '\(PrintableText.quote(origin))' is not this server; requests from other sites are refused")
            }
        }
        return try await next(request, context)
    }

    /// `name` or `name:port`, with `[v6]` brackets.
    func accepts(authority: String) -> Bool {
        let lower = authority.lowercased()
        var name = lower, portText: Substring?
        if let colon = lower.lastIndex(of: ":"), !lower[colon...].contains("]") {
            name = String(lower[..<colon])
            portText = lower[lower.index(after: colon)...]
        }
        guard names.contains(name) || (acceptsAddresses && Self.isAddressLiteral(name)) else { return false }
        guard let portText, let port else { return true }
        return Int(portText) == port
    }

    private var addresses: String { names.sorted().map { "http://\($0)\(port.map { ":\($0)" } ?? "")/" }.joined(separator: ", ") }

    private static func isAddressLiteral(_ name: String) -> Bool {
        if name.hasPrefix("[") && name.hasSuffix("]") {
            var address = in6_addr()
            return inet_pton(AF_INET6, String(name.dropFirst().dropLast()), &address) == 1
        }
        var address = in_addr()
        return inet_pton(AF_INET, name, &address) == 1
    }

    private static func bracketed(_ host: String) -> String {
        host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
    }
}
