import Foundation
import Testing
import TestSupport

/// The Swift judge against judge.py on the same pixels: fixtures/ea-demo-judge holds clips (all 216 combinations
/// drawn filled and as outlines, and generated videos) as lossless video and judge.py's verdict on each, with
/// every intermediate (tools/train-demo/judge_reference.py wrote them).
@Suite("video judge")
struct VideoJudgeTests {
    static let reference = Fixtures.packageRoot.appendingPathComponent("fixtures/ea-demo-judge")

    struct Clip {
        let prompt: String
        let style: String
        let source: String
        let result: [String: Any]
        let frames: JudgedFrames
    }

    static func clips() throws -> [Clip] {
        let data = try Data(contentsOf: reference.appendingPathComponent("verdicts.json"))
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let perClip = try #require(json["frames_per_clip"] as? Int)
        let entries = try #require(json["clips"] as? [[String: Any]])
        let video = try LibavVideoReader.read(reference.appendingPathComponent("clips.mov").path)
        try #require(video.frames.count == entries.count * perClip, "clips.mov: \(video.frames.count) frames")
        return try entries.enumerated().map { i, entry in
            let frames = Array(video.frames[(i * perClip)..<((i + 1) * perClip)])
            return Clip(prompt: try #require(entry["prompt"] as? String), style: try #require(entry["style"] as? String),
                        source: try #require(entry["source"] as? String), result: try #require(entry["result"] as? [String: Any]),
                        frames: try JudgedFrames(rgb24: frames, height: video.height, width: video.width))
        }
    }

    @Test("gives judge.py's verdict and intermediates on every reference clip, and every drawn clip is right")
    func matchesJudgePy() throws {
        let judge = VideoJudge(grammar: try DemoGrammar())
        let clips = try Self.clips()
        let drawn = clips.filter { $0.source == "drawn" }
        #expect(drawn.count == 432 && Set(drawn.map(\.style)) == ["filled", "outline"])
        #expect(clips.count > drawn.count, "generated videos too")
        for clip in clips {
            let got = try judge.judge(clip.frames, prompt: clip.prompt, style: clip.style)
            let want = clip.result
            let label = "\(clip.source) '\(clip.prompt)' (\(clip.style)): \(got)"
            if clip.source == "drawn" { #expect(got.ok, "\(label)") }
            #expect(got.ok == (want["ok"] as? Bool), "\(label)")
            #expect(got.background == (want["background"] as? String), "\(label)")
            #expect(got.colourFound == (want["colour_found"] as? Bool), "\(label)")
            #expect(got.framesCounted == (want["frames_counted"] as? Int), "\(label)")
            #expect(got.shape == (want["shape"] as? String), "\(label)")
            #expect(got.style == (want["style"] as? String), "\(label)")
            #expect(got.directionOK == (want["direction_ok"] as? Bool), "\(label)")
            if got.framesCounted > 0 {
                #expect(got.shapeVotes == (want["shape_votes"] as? [String: Int]), "\(label)")
                // judge.py rounds the ring to 3 decimals and the displacement to 2.
                let ring = try #require(want["ring"] as? Double)
                #expect(abs((got.ring ?? .nan) - ring) <= 0.0005 + 1e-9, "\(label)")
                let displacement = try #require(want["displacement"] as? [Double])
                try #require(displacement.count == 2)
                #expect(abs((got.displacement?.x ?? .nan) - displacement[0]) <= 0.005 + 1e-9, "\(label)")
                #expect(abs((got.displacement?.y ?? .nan) - displacement[1]) <= 0.005 + 1e-9, "\(label)")
            }
        }
    }

    @Test("refuses a prompt outside the grammar, naming it")
    func refusesOtherPrompts() throws {
        let judge = VideoJudge(grammar: try DemoGrammar())
        let frames = try JudgedFrames(video: [Float](repeating: 0, count: 3 * 2 * 16 * 16), shape: [1, 3, 2, 16, 16])
        #expect(throws: DemoGrammarError.self) { try judge.judge(frames, prompt: "a purple circle moving left on a black background") }
        let black = try judge.judge(frames, prompt: "a red circle moving left on a black background")
        #expect(black.background == "black" && !black.colourFound && black.shape == nil && !black.ok)
    }
}
