#!/usr/bin/env python3
"""PyTorch eager on a CUDA device, the counterpart of `vistune bench --config` on webgpu (docs/gpu.md).

    python3 tools/torch_cuda_ref.py path/to/torch_ref.py configs/small.json [--device cuda]

Imports the team's CPU reference (shared/bench/torch_ref.py) for its model, weights and batches (same seeds,
created on the CPU as there), moves model and batches to the device, and times the same train step and greedy
decode with the device synchronised before each clock read. float32 with TF32 off (vistune computes in
float32). Prints one JSON line in torch_ref.py's shape plus "device". `--device cpu` runs the same code path
without a GPU (to check the script).
"""
import importlib.util
import json
import os
import statistics
import sys
import time

if len(sys.argv) < 3:
    sys.exit("usage: torch_cuda_ref.py path/to/torch_ref.py config.json [--device cuda]")
REF_PATH, CONFIG = sys.argv[1], sys.argv[2]
DEVICE = sys.argv[sys.argv.index("--device") + 1] if "--device" in sys.argv else "cuda"
sys.argv = [REF_PATH, CONFIG]  # torch_ref.py parses its own arguments at import
spec = importlib.util.spec_from_file_location("torch_ref", REF_PATH)
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)
torch, F = ref.torch, ref.F


def sync():
    if DEVICE.startswith("cuda"):
        torch.cuda.synchronize()


def bench_train(model, b, batch):
    ids, labels, pv = (t.to(DEVICE) for t in batch)
    model.train()
    model.vision_tower.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
    times, losses = [], []
    for step in range(b["warmup"] + b["steps"]):
        sync()
        t0 = time.perf_counter()
        logits = model(ids, pv)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), labels[:, 1:].reshape(-1),
                               ignore_index=-100)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(loss))  # a device read, as vistune's awaited loss
        sync()
        if step >= b["warmup"]:
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    B, T = ids.shape
    return {"batch": B, "seq": T, "warmup": b["warmup"], "steps": b["steps"], "median_ms_per_step": round(med * 1e3, 2),
            "min_ms_per_step": round(min(times) * 1e3, 2), "tokens_per_s": round(B * T / med, 1),
            "loss_first": round(losses[0], 4), "loss_last": round(losses[-1], 4),
            "trainable_params": sum(p.numel() for p in params)}


@torch.no_grad()
def bench_generate(model, b, batch):
    n_new, runs = b.get("gen_new", 64), b.get("gen_runs", 3)
    ids, _, pv = (t.to(DEVICE) for t in batch)
    model.eval()
    pf, dec = [], []
    for r in range(runs + 1):  # first run is warm-up
        caches = [{} for _ in model.layers]
        sync()
        t0 = time.perf_counter()
        nxt = int(model(ids, pv[:1], 0, caches)[0, -1].argmax())  # int() reads the device
        t1 = time.perf_counter()
        pos = ids.shape[1]
        for _ in range(n_new):
            nxt = int(model(torch.tensor([[nxt]]), None, pos, caches)[0, -1].argmax())
            pos += 1
        t2 = time.perf_counter()
        if r > 0:
            pf.append(t1 - t0)
            dec.append(t2 - t1)
    return {"prompt_tokens": int(ids.shape[1]), "image_tokens": model.image_seq_length, "new_tokens": n_new,
            "runs": runs, "prefill_ms": round(statistics.median(pf) * 1e3, 2),
            "decode_tokens_per_s": round(n_new / statistics.median(dec), 1)}


def main():
    with open(CONFIG) as f:
        cfg = json.load(f)
    b = cfg["bench"]
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    model = ref.Llava(cfg)
    ref.init_weights(model, 0)
    g = torch.Generator().manual_seed(1)
    # Batches in torch_ref.py's order (generate first), on the CPU generator, then moved.
    gen_batch = ref.make_batch(model, 1, 1 + model.image_seq_length + b.get("gen_prompt", 32), g)
    train_batch = ref.make_batch(model, b["batch"], b["seq"], g)
    model.to(DEVICE)
    model.inv_freq = model.inv_freq.to(DEVICE)
    torch.set_default_device(DEVICE)  # the RoPE angles, masks and decode ids the model makes per call
    out = {"bench": "llava-torch-eager", "config": os.path.splitext(os.path.basename(CONFIG))[0],
           "device": torch.cuda.get_device_name() if DEVICE.startswith("cuda") else DEVICE,
           "torch": torch.__version__, "dtype": "float32", "tf32": False,
           "params_total": sum(p.numel() for p in model.parameters()),
           "params_vision": sum(p.numel() for p in model.vision_tower.parameters())}
    out["generate"] = bench_generate(model, b, gen_batch)
    out["train"] = bench_train(model, b, train_batch)
    if DEVICE.startswith("cuda"):
        out["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
