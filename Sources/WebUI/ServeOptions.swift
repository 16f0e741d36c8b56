import Foundation

/// What `ea-weights serve` is given.
public struct ServeOptions: Sendable {
    /// A models/ tree laid out by `ea-weights prepare`; nil serves the bundled model set `generate` uses.
    public var models: String?
    /// Where runs are saved (video, raw frames, JSON sidecar), as EasyAnimate's `samples/`.
    public var samples: String
    public var host: String
    public var port: Int
    /// Open the page in the desktop's browser once the server listens.
    public var openBrowser: Bool

    public init(models: String? = nil, samples: String = "samples", host: String = "127.0.0.1", port: Int = 7860,
                openBrowser: Bool = false) {
        self.models = models
        self.samples = samples
        self.host = host
        self.port = port
        self.openBrowser = openBrowser
    }

    /// True for the addresses only this machine reaches.
    public static func isLoopback(_ host: String) -> Bool {
        let h = host.lowercased()
        return h == "localhost" || h == "::1" || h == "[::1]" || h.hasPrefix("127.")
    }

    /// The page's address for this machine's browser.
    public var pageURL: String {
        let shown = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : (host == "0.0.0.0" ? "127.0.0.1" : host)
        return "http://\(shown):\(port)/"
    }
}
