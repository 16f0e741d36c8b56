import Foundation
import Safetensors
import WeightOps

/// Synthetic inputs for `ea-weights bench extract-lora`: the real-size PixArt-XL-2 transformer of
/// `MergeBenchmark` (BASE) and the same with a rank-128 LoRA on all 286 Linears merged in (TUNED), both written
/// streaming. The LoRA itself is removed once merged.
public enum ExtractLoRABenchmark {
    public static func synthesize(in directory: String, config: MergeBenchmark.Config,
                                  progress: ProgressHandler? = nil) throws -> (base: String, tuned: String) {
        let (base, lora) = try MergeBenchmark.synthesize(in: directory, config: config, progress: progress)
        let tuned = (directory as NSString).appendingPathComponent("tuned.safetensors")
        _ = try LoRAMerge.run(LoRAMergeOptions(base: base, loras: [LoRASpec(path: lora, multiplier: 1)], output: tuned),
                              progress: progress)
        try? FileManager.default.removeItem(atPath: lora)
        return (base, tuned)
    }
}

/// kohya's extract_lora_from_models.py as it runs on a CPU, for `bench extract-lora --python`: both models
/// loaded whole (safetensors' load_file), every Linear's difference computed first and held (kohya's `diffs`),
/// then per layer `torch.linalg.svd` (full matrices, kohya's call), `U[:, :r] @ diag(S[:r])`, `Vh[:r]`, the
/// quantile clamp, and save_file of the whole LoRA, then an fsync. It prints one JSON object: the seconds from
/// load to fsync (imports excluded), its CPU seconds and peak RSS, or `{"error": ...}` when torch or
/// safetensors is missing.
public enum PythonExtractLoRAReference {
    /// Run as `python3 -c <script> BASE TUNED OUT RANK QUANTILE THREADS` (THREADS 0: torch's default).
    public static let script = """
    import json, os, resource, sys, time
    base_path, tuned_path, out_path = sys.argv[1:4]
    rank, clamp_quantile, threads = int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
    try:
        import torch
        from safetensors.torch import load_file, save_file
        if threads > 0:
            torch.set_num_threads(threads)
    except ImportError as error:
        print(json.dumps({"error": f"python3 lacks torch or safetensors ({error}); "
                                   "pip install torch==2.13.0+cpu safetensors"}))
        sys.exit(0)
    start = time.time()
    base = load_file(base_path)
    tuned = load_file(tuned_path)
    diffs = {}
    for key in sorted(base):
        if key.endswith(".weight") and base[key].dim() == 2:
            name = "lora_unet__" + key[: -len(".weight")].replace(".", "_")
            diffs[name] = tuned[key] - base[key]
            base[key] = None
            tuned[key] = None
    del base, tuned
    lora = {}
    with torch.no_grad():
        for name, mat in diffs.items():
            mat = mat.to(torch.float)
            out_dim, in_dim = mat.size()[0:2]
            r = min(rank, in_dim, out_dim)
            U, S, Vh = torch.linalg.svd(mat)
            U = U[:, :r]
            S = S[:r]
            U = U @ torch.diag(S)
            Vh = Vh[:r, :]
            if clamp_quantile < 1:
                dist = torch.cat([U.flatten(), Vh.flatten()])
                hi_val = torch.quantile(dist, clamp_quantile)
                low_val = -hi_val
                U = U.clamp(low_val, hi_val)
                Vh = Vh.clamp(low_val, hi_val)
            lora[name + ".lora_up.weight"] = U.contiguous()
            lora[name + ".lora_down.weight"] = Vh.contiguous()
            lora[name + ".alpha"] = torch.tensor(float(r))
    save_file(lora, out_path, metadata={"ss_network_dim": str(rank), "ss_network_alpha": str(float(rank))})
    fd = os.open(out_path, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"seconds": time.time() - start, "cpu_seconds": usage.ru_utime + usage.ru_stime,
                      "library": "torch " + torch.__version__, "threads": torch.get_num_threads(),
                      "layers": len(diffs), "peak_rss_bytes": usage.ru_maxrss * 1024}))
    """

    public struct Result: Sendable, Codable {
        public var seconds: Double?
        public var cpuSeconds: Double?
        public var library: String?
        public var threads: Int?
        public var layers: Int?
        public var peakRSSBytes: Int?
        public var error: String?

        enum CodingKeys: String, CodingKey {
            case seconds, cpuSeconds = "cpu_seconds", library, threads, layers, peakRSSBytes = "peak_rss_bytes", error
        }
    }
}
