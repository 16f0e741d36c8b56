/// The text-encoder stage as the Python pipeline runs it, for `ea-weights bench t5 --python`: transformers'
/// T5EncoderModel loaded in BF16 from the same folder (as PixArt's pipeline does on a CPU), one warm-up encode
/// of 8 tokens, then the timed encode of BATCH × TOKENS ids. It prints one JSON object: the encode's seconds, the
/// load's seconds, peak RSS and peak anonymous memory, or `{"error": ...}` when torch or transformers is missing.
public enum PythonT5Reference {
    /// Run as `python3 -c <script> FOLDER BATCH TOKENS THREADS` (THREADS 0: torch's default).
    public static let script = """
    import json, resource, sys, time
    folder, batch, tokens, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    try:
        import torch
        from transformers import T5EncoderModel
        from transformers.utils import logging
        logging.set_verbosity_error()
    except ImportError as error:
        print(json.dumps({"error": f"python3 lacks torch or transformers ({error}); "
                                   "pip install torch==2.13.0+cpu transformers"}))
        sys.exit(0)
    if threads > 0:
        torch.set_num_threads(threads)
    def anon_kb():
        for line in open("/proc/self/status"):
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
        return 0
    start = time.time()
    model = T5EncoderModel.from_pretrained(folder, torch_dtype=torch.bfloat16).eval()
    load = time.time() - start
    vocab = model.config.vocab_size
    def ids(length):
        return torch.tensor([[(i * 7919 + row * 104729) % vocab for i in range(length)] for row in range(batch)])
    with torch.no_grad():
        model(input_ids=ids(8), attention_mask=torch.ones(batch, 8, dtype=torch.long))
        start = time.time()
        out = model(input_ids=ids(tokens), attention_mask=torch.ones(batch, tokens, dtype=torch.long)).last_hidden_state
        seconds = time.time() - start
    print(json.dumps({"seconds": seconds, "load_seconds": load, "library": "torch " + torch.__version__,
                      "threads": torch.get_num_threads(), "finite": bool(torch.isfinite(out).all()),
                      "anon_mb_after": anon_kb() / 1024,
                      "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
    """
}
