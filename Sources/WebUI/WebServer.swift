import Foundation
import Hummingbird
import Logging
import Safetensors

/// `ea-weights serve`: EasyAnimate's web UI page and its JSON API on the CPU runner.
public enum WebServer {
    /// Serves until SIGINT or SIGTERM, which end the process as they end every command (`Interruption`): the
    /// running job stops at its next check, and within the grace period the process exits, removing every
    /// partial output, so an interrupted run leaves nothing in the samples folder.
    public static func run(_ options: ServeOptions) throws {
        Interruption.install()
        if !ServeOptions.isLoopback(options.host) {
            FileHandle.standardError.write(Data("""
                warning: serving on \(options.host): anyone who reaches this machine's port \(options.port) can run \
                generations and read \(options.samples)/; the page has no login.\n
                """.utf8))
        }
        let state = try ServerState(options)
        // A models folder that cannot be read is a one-line error now, not a page that fails later.
        _ = try ModelCatalog.scan(state.source)
        let app = application(state: state) { port in
            print("ea-weights serve: \(options.pageURL.replacingOccurrences(of: ":\(options.port)/", with: ":\(port)/")) "
                  + "(models: \(state.sourceDescription), samples: \(state.store.folder)); Ctrl-C stops")
            fflush(stdout)
            if options.openBrowser { openInBrowser(options.pageURL) }
        }
        let outcome = BlockingResult()
        Task {
            do { try await app.runService(gracefulShutdownSignals: []) } catch { outcome.set(error) }
            outcome.finish()
        }
        outcome.wait()
        state.jobs.shutdown()
        if let error = outcome.error { throw CannotListen(address: options.pageURL, reason: "\(error)") }
    }

    /// The application: the page, the API and the files, behind the address check, every error as JSON.
    /// `onListening` is told the port (the real one when `options.port` is 0).
    static func application(state: ServerState, onListening: @escaping @Sendable (Int) -> Void = { _ in }) -> some ApplicationProtocol {
        let router = Router()
        router.add(middleware: JSONErrorMiddleware())
        router.add(middleware: RequestOriginGuard(host: state.options.host, port: state.options.port == 0 ? nil : state.options.port))
        router.get("/") { _, _ in try page("index.html", state) }
        router.get("/:file") { _, context in try page(try context.parameters.require("file"), state) }
        APIRoutes.add(to: router, state: state)
        var logger = Logger(label: "ea-weights.serve")
        logger.logLevel = .warning
        return Application(
            router: router,
            configuration: .init(address: .hostname(state.options.host, port: state.options.port), serverName: "ea-weights"),
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? state.options.port) },
            logger: logger)
    }

    private static func page(_ name: String, _ state: ServerState) throws -> Response {
        guard let file = state.page[name] else { throw APIError.notFound("no page file \(name)") }
        return Response(status: .ok, headers: [.contentType: file.type, .cacheControl: "no-cache"],
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: file.bytes)))
    }

    private static func openInBrowser(_ url: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["xdg-open", url]
        do { try process.run() } catch {
            FileHandle.standardError.write(Data("ea-weights serve: could not open a browser (\(error)); open \(url)\n".utf8))
        }
    }
}

/// The server could not start (the port taken, an address not of this machine).
struct CannotListen: Error, CustomStringConvertible {
    let address: String
    let reason: String
    var description: String { "cannot serve \(address): \(reason) (another server on that port? choose one with --port)" }
}

/// The outcome of the server's task, waited for by the command's thread.
private final class BlockingResult: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var stored: Error?
    var error: Error? { lock.withLock { stored } }
    func set(_ error: Error) { lock.withLock { stored = error } }
    func finish() { done.signal() }
    func wait() { done.wait() }
}
