/// The merge as a Python user does it, for `ea-weights bench merge --python`: safetensors' load_file, the
/// update in torch (numpy when torch is missing), save_file, then an fsync so both sides pay for durability.
/// It prints one JSON object: seconds from load to fsync (imports excluded, which favours Python), its own
/// peak RSS and the library used, or `{"error": ...}` when python3 lacks safetensors or both array libraries.
public enum PythonMergeReference {
    /// Run as `python3 -c <script> BASE LORA OUT`.
    public static let script = """
    import json, os, resource, sys, time
    base_path, lora_path, out_path = sys.argv[1:4]
    try:
        try:
            import torch
            from safetensors.torch import load_file, save_file
            library = "torch " + torch.__version__
            def delta(up, down, scale):
                return scale * (up.float() @ down.float())
        except ImportError:
            import numpy as np
            from safetensors.numpy import load_file, save_file
            library = "numpy " + np.__version__
            def delta(up, down, scale):
                return np.float32(scale) * (up.astype(np.float32) @ down.astype(np.float32))
    except ImportError as error:
        print(json.dumps({"error": str(error)}))
        sys.exit(0)
    start = time.time()
    base = load_file(base_path)
    lora = load_file(lora_path)
    keys = {k.replace(".", "_"): k for k in base}
    modules = {}
    for name, value in lora.items():
        module, part = name.split(".", 1)
        modules.setdefault(module, {})[part] = value
    for module, parts in modules.items():
        key = keys[module[len("lora_unet_"):].lstrip("_") + "_weight"]
        up, down = parts["lora_up.weight"], parts["lora_down.weight"]
        scale = float(parts["alpha"]) / up.shape[1] if "alpha" in parts else 1.0
        base[key] += delta(up, down, scale)
    save_file(base, out_path, metadata={"format": "pt"})
    fd = os.open(out_path, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    print(json.dumps({"seconds": time.time() - start, "library": library,
                      "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
    """

    /// What the script reports.
    public struct Result: Sendable, Codable {
        public var seconds: Double?
        public var library: String?
        public var peakRSSBytes: Int?
        public var error: String?

        enum CodingKeys: String, CodingKey { case seconds, library, peakRSSBytes = "peak_rss_bytes", error }
    }
}
