/// `convert` as a Python user does it, for `ea-weights bench convert --python`: safetensors' load_file, torch,
/// save_file, then an fsync. int8 is ComfyUI's blockwise layout (per g×g block `scale = max(absmax / 127, 1e-8)`,
/// `q = round(clamp(w / scale, -127, 127))`), fp8 its float8_e4m3fn layout (`scale = absmax / 448`), f16 `.half()`;
/// every 2-D `.weight` is quantized, as the benchmark's transformer has no layer the converter keeps.
/// Prints one JSON object: seconds from load to fsync (imports excluded), peak RSS, the library, or `{"error"}`.
public enum PythonConvertReference {
    /// Run as `python3 -c <script> IN OUT TARGET GROUP`.
    public static let script = """
    import json, os, resource, sys, time
    in_path, out_path, target, group = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    try:
        import torch
        from safetensors.torch import load_file, save_file
    except ImportError as error:
        print(json.dumps({"error": str(error)}))
        sys.exit(0)
    start = time.time()
    state = load_file(in_path)
    out = {}
    for name, w in state.items():
        if target == "f16":
            out[name] = w.half()
        elif name.endswith(".weight") and w.dim() == 2 and (target == "fp8" or (w.shape[0] % group == 0 and w.shape[1] % group == 0)):
            layer = name[: -len(".weight")]
            if target == "int8":
                rows, cols = w.shape
                blocks = w.reshape(rows // group, group, cols // group, group)
                scale = (blocks.abs().amax(dim=(1, 3)) / 127.0).clamp(min=1e-8)
                q = torch.round(torch.clamp(blocks / scale[:, None, :, None], -127, 127)).to(torch.int8)
                out[name] = q.reshape(rows, cols)
                out[layer + ".weight_scale"] = scale.float()
            else:
                scale = w.abs().max() / 448.0
                out[name] = torch.clamp(w * (1.0 / scale), -448, 448).to(torch.float8_e4m3fn)
                out[layer + ".weight_scale"] = scale.float()
        else:
            out[name] = w
    save_file(out, out_path, metadata={"format": "pt"})
    fd = os.open(out_path, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    seconds = time.time() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "peak_rss_bytes": peak, "library": "torch " + torch.__version__}))
    """
}
