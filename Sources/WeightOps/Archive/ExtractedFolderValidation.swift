import Foundation
import Safetensors

/// The checks an extraction makes before committing its staging folder, reported as `ArchiveError`s naming the
/// archive (only extraction reports archive errors; other callers of the layout check report their own).
enum ExtractedFolderValidation {
    /// Validates every `.safetensors` file and every index in `files` (relative to `staging`) and, when asked, the
    /// PixArt layout. Errors name the files where they will finally live (`finalPath`), not the staging folder.
    static func validate(staging: String, finalPath: String, files: [String], archive: String, requirePixArt: Bool) throws {
        let folderName = (finalPath as NSString).lastPathComponent
        for file in files where ComponentWeights.isWeightsFile(file) {
            do {
                _ = try openStateDict(path: staging + "/" + file)
            } catch {
                let reason = "\(error)".replacingOccurrences(of: staging + "/" + file + ": ", with: "")
                    .replacingOccurrences(of: staging, with: finalPath)
                throw ArchiveError.invalidModelFile(path: archive, entry: folderName + "/" + file, reason: reason)
            }
        }
        if requirePixArt {
            let problems = PixArtFolder.check(staging).problems
            if !problems.isEmpty { throw ArchiveError.notPixArtFolder(path: archive, problems: problems) }
        }
    }
}
