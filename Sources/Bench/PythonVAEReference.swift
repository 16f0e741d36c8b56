/// The VAE stage as EasyAnimate runs it, for `ea-weights bench vae --python`: diffusers' AutoencoderKL (F32)
/// from the same folder, one warm-up decode of a 2×2 latent, then FRAMES decodes of one H×W frame each (EasyAnimate
/// decodes frame by frame). It prints one JSON object with the seconds and peak RSS, or `{"error": ...}`.
public enum PythonVAEReference {
    /// Run as `python3 -c <script> FOLDER FRAMES HEIGHT WIDTH THREADS` (THREADS 0: torch's default).
    public static let script = """
    import json, resource, sys, time
    folder, frames, height, width, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    try:
        import torch
        from diffusers import AutoencoderKL
        from diffusers.utils import logging
        logging.set_verbosity_error()
    except ImportError as error:
        print(json.dumps({"error": f"python3 lacks torch or diffusers ({error}); "
                                   "pip install torch==2.13.0+cpu diffusers==0.27.2"}))
        sys.exit(0)
    if threads > 0:
        torch.set_num_threads(threads)
    vae = AutoencoderKL.from_pretrained(folder).eval()
    scale = 2 ** (len(vae.config.block_out_channels) - 1)
    latent = vae.config.latent_channels
    generator = torch.Generator().manual_seed(42)
    with torch.no_grad():
        vae.decode(torch.randn(1, latent, 2, 2, generator=generator))
        z = torch.randn(frames, latent, height // scale, width // scale, generator=generator)
        start = time.time()
        for f in range(frames):
            out = vae.decode(z[f:f + 1]).sample
        seconds = time.time() - start
    print(json.dumps({"seconds": seconds, "library": "torch " + torch.__version__, "threads": torch.get_num_threads(),
                      "finite": bool(torch.isfinite(out).all()),
                      "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
    """
}
