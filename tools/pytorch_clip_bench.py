#!/usr/bin/python3
"""PyTorch reference for `clipgen-bench backends --pytorch`: CLIP ViT-B-32 and RN50 (random weights), written from the
architecture description (not OpenAI's code). Prints one JSON line per (model, tower, batch): the median items/s.
Usage: pytorch_clip_bench.py [--models ViT-B-32,RN50] [--towers image,text] | [--tasks ViT-B-32:image,RN50:image] [--batches 1,32] [--threads 2] [--runs 3]
       pytorch_clip_bench.py --serve 1 [--threads 2]: reads "task MODEL TOWER BATCH" (builds the tower and its input, one warm-up,
       answers "ready") and "run" (one timed forward, answers its seconds) from stdin, so that a caller can interleave its own
       runs with PyTorch's under the same load (`clipgen-bench torch-vs-pytorch`)."""
import argparse, ctypes, json, os, statistics, time, torch
from torch import nn

class Block(nn.Module):  # pre-LN transformer block: x + attn(ln(x)), x + mlp(ln(x))
    def __init__(s, d, h, mask=None):
        super().__init__(); s.mask = mask
        s.ln_1, s.attn, s.ln_2 = nn.LayerNorm(d), nn.MultiheadAttention(d, h), nn.LayerNorm(d)
        s.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
    def forward(s, x):  # x: [L, N, D], sequence first like nn.MultiheadAttention's default
        y = s.ln_1(x); x = x + s.attn(y, y, y, need_weights=False, attn_mask=s.mask)[0]
        return x + s.mlp(s.ln_2(x))

class Text(nn.Module):  # token + position embeddings, causal transformer, ln, the end token's row @ projection
    def __init__(s, d=512, layers=12, heads=8, out=512, ctx=77, vocab=49408):
        super().__init__(); mask = torch.full((ctx, ctx), float("-inf")).triu(1)
        s.tok, s.pos = nn.Embedding(vocab, d), nn.Parameter(torch.randn(ctx, d) * .01)
        s.blocks, s.ln, s.proj = nn.Sequential(*[Block(d, heads, mask) for _ in range(layers)]), nn.LayerNorm(d), nn.Parameter(torch.randn(d, out) * d ** -.5)
    def forward(s, ids):
        x = s.ln(s.blocks((s.tok(ids) + s.pos).permute(1, 0, 2)).permute(1, 0, 2))
        return x[torch.arange(ids.shape[0]), ids.argmax(-1)] @ s.proj

class ViT(nn.Module):  # 32x32 patches, class token, positions, ln_pre, transformer, ln_post on the class token @ proj
    def __init__(s, d=768, layers=12, heads=12, out=512, res=224, patch=32):
        super().__init__(); n = (res // patch) ** 2 + 1
        s.conv, s.cls, s.pos = nn.Conv2d(3, d, patch, patch, bias=False), nn.Parameter(torch.randn(d) * .02), nn.Parameter(torch.randn(n, d) * .02)
        s.ln_pre, s.blocks, s.ln_post = nn.LayerNorm(d), nn.Sequential(*[Block(d, heads) for _ in range(layers)]), nn.LayerNorm(d)
        s.proj = nn.Parameter(torch.randn(d, out) * d ** -.5)
    def forward(s, px):
        x = s.conv(px).flatten(2).transpose(1, 2)
        x = torch.cat([s.cls.expand(x.shape[0], 1, -1), x], 1) + s.pos
        return s.ln_post(s.blocks(s.ln_pre(x).permute(1, 0, 2))[0]) @ s.proj

def conv_bn(i, o, k=1, stride=1):  # conv (no bias) + batch norm + relu
    return [nn.Conv2d(i, o, k, stride, k // 2, bias=False), nn.BatchNorm2d(o), nn.ReLU()]

class Bottleneck(nn.Module):  # 1x1, 3x3, avgpool(stride), 1x1 (x4); the shortcut is avgpool + 1x1 conv + bn when shapes change
    def __init__(s, i, p, stride):
        super().__init__(); pool = [nn.AvgPool2d(stride)] if stride > 1 else []
        s.body = nn.Sequential(*conv_bn(i, p), *conv_bn(p, p, 3), *pool, nn.Conv2d(p, 4 * p, 1, bias=False), nn.BatchNorm2d(4 * p))
        s.down = nn.Sequential(*pool, *conv_bn(i, 4 * p)[:2]) if stride > 1 or i != 4 * p else nn.Identity()
    def forward(s, x): return torch.relu(s.body(x) + s.down(x))

class ModifiedResNet(nn.Module):  # 3-conv stem, avgpool, 4 stages, attention pooling (mean token queries all 50 tokens)
    def __init__(s, layers=(3, 4, 6, 3), w=64, heads=32, out=1024):
        super().__init__(); blocks, i = [], w
        for n, (count, stride) in enumerate(zip(layers, (1, 2, 2, 2))):
            for b in range(count): blocks.append(Bottleneck(i, w << n, stride if b == 0 else 1)); i = 4 * (w << n)
        s.body = nn.Sequential(*conv_bn(3, w // 2, 3, 2), *conv_bn(w // 2, w // 2, 3), *conv_bn(w // 2, w, 3), nn.AvgPool2d(2), *blocks)
        s.pos, s.attn, s.proj = nn.Parameter(torch.randn(50, i) * i ** -.5), nn.MultiheadAttention(i, heads), nn.Linear(i, out)
    def forward(s, px):
        x = s.body(px).flatten(2).permute(2, 0, 1)                     # [HW, N, C]
        x = torch.cat([x.mean(0, keepdim=True), x]) + s.pos[:, None]
        return s.proj(s.attn(x[:1], x, x, need_weights=False)[0][0])

a = argparse.ArgumentParser(); [a.add_argument("--" + k, default=v) for k, v in
    dict(models="ViT-B-32,RN50", towers="image,text", tasks="", batches="1,32", threads="2", runs="3", serve="").items()]; o = a.parse_args()
tasks = [t.split(":") for t in o.tasks.split(",")] if o.tasks else [(m, t) for m in o.models.split(",") for t in o.towers.split(",")]
torch.set_num_threads(int(o.threads)); torch.manual_seed(0)
try: blas = ctypes.CDLL("libopenblas.so.0"); blas.openblas_get_corename.restype = blas.openblas_get_config.restype = ctypes.c_char_p; \
    core = f"{blas.openblas_get_corename().decode()} ({blas.openblas_get_config().decode()})"
except OSError: core = "no libopenblas.so.0"
print(json.dumps(dict(config=dict(torch=torch.__version__, threads=torch.get_num_threads(), openblas=core,
    env={k: v for k, v in os.environ.items() if k.startswith("OPENBLAS") or k == "LD_PRELOAD"}))), flush=True)
def tower_of(name, tower):
    m = (ViT() if name == "ViT-B-32" else ModifiedResNet()) if tower == "image" else Text(out=512 if name == "ViT-B-32" else 1024)
    return m.eval()
def input_of(tower, batch):
    return torch.randn(batch, 3, 224, 224) if tower == "image" else torch.randint(1, 49407, (batch, 77)).index_fill_(1, torch.tensor([76]), 49407)
if o.serve:
    import sys
    m = x = None
    for line in sys.stdin:
        cmd = line.split()
        if not cmd: continue
        with torch.inference_mode():
            if cmd[0] == "task":
                m, x = tower_of(cmd[1], cmd[2]), input_of(cmd[2], int(cmd[3])); m(x); print("ready", flush=True)
            elif cmd[0] == "run":
                t0 = time.perf_counter(); m(x); print(time.perf_counter() - t0, flush=True)
    raise SystemExit(0)
for name, tower in tasks:
    m = tower_of(name, tower)
    for batch in map(int, o.batches.split(",")):
        x = input_of(tower, batch)
        with torch.inference_mode():
            times = [(time.perf_counter(), m(x), time.perf_counter()) for _ in range(int(o.runs) + 1)][1:]
        print(json.dumps(dict(model=name, tower=tower, batch=batch, threads=torch.get_num_threads(),
                              items_per_s=batch / statistics.median(t1 - t0 for t0, _, t1 in times))), flush=True)
