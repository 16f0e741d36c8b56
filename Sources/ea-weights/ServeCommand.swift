import ArgumentParser
import WebUI

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "EasyAnimate's web UI on this machine: generate, compare runs, inspect and verify models.",
        discussion: """
        Serves one page (no internet needed) and a JSON API: Generate with EasyAnimate's controls and live \
        progress, the history of runs saved in --samples (video, exact frames, JSON sidecar; "use these \
        settings" refills the form), Models (what `inspect` and `verify --fast` say, and a Verify button for \
        the full hashing check), and Compare (two runs frame by frame: side by side, a difference heat map, max \
        abs difference and PSNR). One job runs at a time; later ones queue, and any can be cancelled.

        Models: --models DIR is a tree laid out by `ea-weights prepare`; without it the bundled model set \
        `generate` uses is served. Only models in these lists can be chosen.

        The server listens on 127.0.0.1 only unless --host says otherwise (then it warns: the page has no \
        login). Requests whose Host or Origin is not this server are refused.

        Examples:
          ea-weights serve
          ea-weights serve --models models --samples samples --open
          ea-weights serve --port 8080
        """
    )

    @Option(help: ArgumentHelp("A models/ tree laid out by `ea-weights prepare` (default: the bundled set).", valueName: "dir"), completion: .directory)
    var models: String?

    @Option(help: ArgumentHelp("Where runs are saved.", valueName: "dir"), completion: .directory)
    var samples = "samples"

    @Option(help: "The address to listen on; anything but a loopback address exposes the page to the network.")
    var host = "127.0.0.1"

    @Option(help: "The port to listen on.")
    var port = 7860

    @Flag(name: .customLong("open"), help: "Open the page in the desktop's browser.")
    var openBrowser = false

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be from 0 to 65535") }
        guard !host.isEmpty else { throw ValidationError("--host must not be empty") }
    }

    func run() throws {
        try WebServer.run(ServeOptions(models: models, samples: samples, host: host, port: port, openBrowser: openBrowser))
    }
}
