import ArgumentParser
import Foundation
import Runner

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Show how the pipeline tokenizes a prompt for T5, and whether it was cut at 120 tokens.",
        discussion: """
        Applies EasyAnimate's preprocessing (lower case, outer spaces stripped), then T5's SentencePiece \
        tokenizer from DIR (spiece.model and its JSON files, as transformers 4.37 reads them), truncates to \
        119 tokens plus </s> and pads to 120: the ids and mask the text encoder receives. Prompts longer than \
        that lose their end silently in the pipeline; this command shows where the cut falls and which pieces \
        the vocabulary does not know.

        --json prints {"attention_mask", "input_ids", "pieces", "truncated"}: the 120 ids and mask exactly as \
        the pipeline feeds them, the token strings of the unpadded ids, and whether the prompt was cut.

        Examples:
          ea-weights tokenize --tokenizer models/Diffusion_Transformer/PixArt-XL-2-512x512/tokenizer "A snowy forest"
          ea-weights tokenize --tokenizer fixtures/ea-tiny/tiny-pixart/tokenizer --json "café naïve"
        """
    )

    @Option(help: ArgumentHelp("The tokenizer folder (with spiece.model).", valueName: "dir"), completion: .directory)
    var tokenizer: String

    @Flag(help: "Print one JSON object for scripts.")
    var json = false

    @Argument(help: "The prompt (quote it).")
    var text: String

    func run() throws {
        let report = try TokenizationReport.make(prompt: text, tokenizerDirectory: tokenizer)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(report.text(), terminator: "")
        }
    }
}
