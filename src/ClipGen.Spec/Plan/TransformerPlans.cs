using System.Globalization;

namespace ClipGen.Specs
{
    // The transformer blocks' plans: every number a block needs, worked out once, and the block's keys in every layout.
    // Their TorchSharp forward and ONNX emission live together in the runtime's ClipGen.Modules, one file per block.

    /// <summary>A LayerNorm over the last axis (<c>weight</c>, <c>bias</c>).</summary>
    /// <param name="Width">Normalised width.</param>
    /// <param name="Eps">Epsilon added to the variance.</param>
    public sealed record LayerNormPlan(int Width, double Eps)
    {
        public void WriteKeys(KeyWriter w)
        {
            w.Param("weight", new long[] { Width });
            w.Param("bias", new long[] { Width });
        }
    }

    /// <summary>
    /// Multi-head attention with PyTorch's <c>nn.MultiheadAttention</c> names (<c>in_proj_weight</c> = q, k, v stacked,
    /// <c>in_proj_bias</c>, <c>out_proj</c>). Self-attention in a residual block, or the latent query's cross-attention of an
    /// attention-pool head (<paramref name="LatentQuery"/>; timm names its projections <c>q</c>, <c>kv</c>, <c>proj</c>).
    /// </summary>
    /// <param name="Width">Model width (queries, keys, values and output).</param>
    /// <param name="Heads">Heads; <paramref name="Width"/> is divisible by it.</param>
    /// <param name="Causal">Each position attends only to itself and earlier ones (the text tower's mask).</param>
    /// <param name="LatentQuery">The queries come from a learned latent, not from the tokens.</param>
    public sealed record AttentionPlan(int Width, int Heads, bool Causal, bool LatentQuery = false)
    {
        public int HeadDim => Width / Heads;

        public void WriteKeys(KeyWriter w)
        {
            long d = Width;
            if (LatentQuery)
            {
                // timm's AttentionPoolLatent: q [d, d] and kv [2d, d]; Hugging Face's SigLIP head is an nn.MultiheadAttention.
                w.Param("in_proj_weight", new[] { 3 * d, d }, timm: Alt.Split(new[] { "q.weight", "kv.weight" }, new[] { d, 2 * d }));
                w.Param("in_proj_bias", new[] { 3 * d }, timm: Alt.Split(new[] { "q.bias", "kv.bias" }, new[] { d, 2 * d }));
            }
            else
            {
                w.Param("in_proj_weight", new[] { 3 * d, d }, timm: Alt.Name("qkv.weight"),
                    hf: Alt.Split(new[] { "q_proj.weight", "k_proj.weight", "v_proj.weight" }, new[] { d, d, d }));
                w.Param("in_proj_bias", new[] { 3 * d }, timm: Alt.Name("qkv.bias"),
                    hf: Alt.Split(new[] { "q_proj.bias", "k_proj.bias", "v_proj.bias" }, new[] { d, d, d }));
            }
            using (w.Scope("out_proj", timm: "proj"))
            {
                w.Param("weight", new[] { d, d });
                w.Param("bias", new[] { d });
            }
        }
    }

    /// <summary>The MLP of a block: <c>c_fc</c> → activation → <c>c_proj</c> (timm and Hugging Face: <c>fc1</c>, <c>fc2</c>).</summary>
    /// <param name="Width">Input and output width.</param>
    /// <param name="Hidden">Hidden width, <c>int(width · mlp_ratio)</c>.</param>
    /// <param name="Activation">The activation between the two layers.</param>
    public sealed record MlpPlan(int Width, int Hidden, ActivationKind Activation)
    {
        public void WriteKeys(KeyWriter w)
        {
            using (w.Scope("c_fc", timm: "fc1", hf: "fc1"))
            {
                w.Param("weight", new long[] { Hidden, Width });
                w.Param("bias", new long[] { Hidden });
            }
            using (w.Scope("c_proj", timm: "fc2", hf: "fc2"))
            {
                w.Param("weight", new long[] { Width, Hidden });
                w.Param("bias", new long[] { Width });
            }
        }
    }

    /// <summary>
    /// open_clip's <c>ResidualAttentionBlock</c>: <c>x + ls_1(attn(ln_1(x)))</c>, then <c>x + ls_2(mlp(ln_2(x)))</c>. LayerScale
    /// (<c>ls_1.gamma</c>, <c>ls_2.gamma</c>) exists only when <paramref name="LayerScale"/> is set, so its keys exist only then.
    /// </summary>
    /// <param name="LayerScale">LayerScale's initial value, or null for none.</param>
    public sealed record ResidualBlockPlan(AttentionPlan Attention, LayerNormPlan Norm1, MlpPlan Mlp, LayerNormPlan Norm2, double? LayerScale)
    {
        public int Width => Attention.Width;

        public void WriteKeys(KeyWriter w)
        {
            long d = Width;
            using (w.Scope("attn", timm: "attn", hf: "self_attn")) Attention.WriteKeys(w);
            using (w.Scope("ln_1", timm: "norm1", hf: "layer_norm1")) Norm1.WriteKeys(w);
            if (LayerScale != null)
                using (w.Scope("ls_1", timm: "ls1")) w.Param("gamma", new[] { d }, hf: Alt.None);
            using (w.Scope("mlp")) Mlp.WriteKeys(w);
            using (w.Scope("ln_2", timm: "norm2", hf: "layer_norm2")) Norm2.WriteKeys(w);
            if (LayerScale != null)
                using (w.Scope("ls_2", timm: "ls2")) w.Param("gamma", new[] { d }, hf: Alt.None);
        }
    }

    /// <summary>A stack of residual blocks (<c>resblocks.N</c>; timm <c>blocks.N</c>; Hugging Face <c>layers.N</c>).</summary>
    public sealed record TransformerPlan(int Layers, ResidualBlockPlan Block)
    {
        public int Width => Block.Width;

        public void WriteKeys(KeyWriter w)
        {
            for (int i = 0; i < Layers; i++)
            {
                var n = i.ToString(CultureInfo.InvariantCulture);
                using (w.Scope("resblocks." + n, timm: "blocks." + n, hf: "layers." + n)) Block.WriteKeys(w);
            }
        }

        /// <summary>The plan of a transformer of <paramref name="layers"/> blocks.</summary>
        public static TransformerPlan Create(int width, int layers, int heads, int mlpWidth, ActivationKind act, double eps, double? layerScale, bool causal) =>
            new TransformerPlan(layers, new ResidualBlockPlan(
                new AttentionPlan(width, heads, causal), new LayerNormPlan(width, eps), new MlpPlan(width, mlpWidth, act),
                new LayerNormPlan(width, eps), layerScale));
    }

    /// <summary>
    /// SigLIP's attention-pool ("MAP") head, timm's <c>AttentionPoolLatent</c>: a learned latent query (<c>latent</c> [1, 1, W])
    /// attends over the tokens (<c>attn</c>), then <c>x + mlp(norm(x))</c>; the result is the pooled vector.
    /// </summary>
    public sealed record AttentionPoolPlan(AttentionPlan Attention, LayerNormPlan Norm, MlpPlan Mlp)
    {
        public int Width => Attention.Width;

        public void WriteKeys(KeyWriter w)
        {
            w.Param("latent", new long[] { 1, 1, Width }, hf: Alt.Name("probe"));
            using (w.Scope("attn", timm: "", hf: "attention")) Attention.WriteKeys(w);
            using (w.Scope("norm", timm: "norm", hf: "layernorm")) Norm.WriteKeys(w);
            using (w.Scope("mlp")) Mlp.WriteKeys(w);
        }
    }
}
