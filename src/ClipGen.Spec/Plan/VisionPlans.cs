using System.Collections.Generic;
using System.Globalization;
using System.Linq;

namespace ClipGen.Specs
{
    /// <summary>Which Hugging Face transformers class holds a model (its <c>config.json</c> <c>architectures</c>).</summary>
    public enum HfFamily
    {
        /// <summary>Hugging Face has no class for this model (a ModifiedResNet, or a mix of features neither class has).</summary>
        None,
        /// <summary><c>CLIPModel</c>.</summary>
        Clip,
        /// <summary><c>SiglipModel</c>.</summary>
        Siglip,
    }

    /// <summary>An image tower's plan.</summary>
    /// <param name="ImageSize">Input resolution R of <c>pixel_values</c> [N, 3, R, R].</param>
    /// <param name="OutputDim">The width of the tower's output (the embedding width).</param>
    public abstract record VisionPlan(int ImageSize, int OutputDim)
    {
        /// <summary>Writes the tower's keys inside the <c>visual</c> scope.</summary>
        public abstract void WriteKeys(KeyWriter w, HfFamily hf);
    }

    /// <summary>
    /// One ViT image tower, every family's (OpenAI, CLIPA, LayerScale, SigLIP's timm ViT): patch embedding (<c>conv1</c>, bias
    /// optional), optional class token (<c>class_embedding</c>), <c>positional_embedding</c>, optional <c>ln_pre</c>, transformer,
    /// <c>ln_post</c> before or after pooling, pooling (class token, mean, or the attention-pool head <c>attn_pool</c>) and an
    /// optional projection <c>proj</c>. A feature that is off has no keys.
    /// </summary>
    /// <param name="Tokens">Sequence length: grid² patches, plus one with a class token.</param>
    /// <param name="Timm">open_clip stores the tower as a timm model (<c>visual.trunk.*</c> with timm's names).</param>
    public sealed record VitPlan(
        int ImageSize, int PatchSize, int Grid, int Width, bool ClassToken, bool PatchBias, LayerNormPlan? LnPre,
        TransformerPlan Transformer, VisionPooling Pool, AttentionPoolPlan? AttentionPool, LayerNormPlan LnPost, bool FinalLnAfterPool,
        bool Proj, int OutputDim, bool Timm)
        : VisionPlan(ImageSize, OutputDim)
    {
        public int Tokens => Grid * Grid + (ClassToken ? 1 : 0);
        public int Heads => Transformer.Block.Attention.Heads;

        public override void WriteKeys(KeyWriter w, HfFamily hf)
        {
            long d = Width;
            bool clip = hf == HfFamily.Clip;
            if (ClassToken)
                w.Param("class_embedding", new[] { d }, timm: Alt.Reshaped("trunk.cls_token", 1, 1, d),
                    hf: clip ? Alt.Name("embeddings.class_embedding") : Alt.None);
            w.Param("positional_embedding", new[] { (long)Tokens, d }, timm: Alt.Reshaped("trunk.pos_embed", 1, Tokens, d),
                hf: Alt.Name("embeddings.position_embedding.weight"));
            if (Proj)
                w.Param("proj", new[] { d, OutputDim }, timm: Alt.Transposed("head.proj.weight"),
                    hf: clip ? Alt.Transposed("/visual_projection.weight") : Alt.None);
            using (w.Scope("", timm: "trunk"))
            {
                using (w.Scope("conv1", timm: "patch_embed.proj", hf: "embeddings.patch_embedding"))
                {
                    w.Param("weight", new[] { d, 3, PatchSize, PatchSize });
                    if (PatchBias) w.Param("bias", new[] { d }, hf: clip ? Alt.None : null);
                }
                if (LnPre != null)
                    using (w.Scope("ln_pre", timm: "norm_pre", hf: "pre_layrnorm")) // sic: Hugging Face's spelling
                        LnPre.WriteKeys(w);
                using (w.Scope("transformer", timm: "", hf: "encoder")) Transformer.WriteKeys(w);
                using (w.Scope("ln_post", timm: FinalLnAfterPool ? "fc_norm" : "norm", hf: "post_layernorm")) LnPost.WriteKeys(w);
                if (AttentionPool != null)
                    using (w.Scope("attn_pool", timm: "attn_pool", hf: "head")) AttentionPool.WriteKeys(w);
            }
        }
    }

    /// <summary>OpenAI's <c>Bottleneck</c> (expansion 4; stride as an average pool; a downsample branch when the shape changes).</summary>
    public sealed record BottleneckPlan(int Inplanes, int Planes, int Stride)
    {
        public const int Expansion = 4;
        public bool Downsample => Stride > 1 || Inplanes != Planes * Expansion;

        public void WriteKeys(KeyWriter w)
        {
            ResNetPlan.Conv(w, "conv1", Planes, Inplanes, 1); ResNetPlan.BatchNorm(w, "bn1", Planes);
            ResNetPlan.Conv(w, "conv2", Planes, Planes, 3); ResNetPlan.BatchNorm(w, "bn2", Planes);
            ResNetPlan.Conv(w, "conv3", Planes * Expansion, Planes, 1); ResNetPlan.BatchNorm(w, "bn3", Planes * Expansion);
            if (Downsample)
            {
                ResNetPlan.Conv(w, "downsample.0", Planes * Expansion, Inplanes, 1);
                ResNetPlan.BatchNorm(w, "downsample.1", Planes * Expansion);
            }
        }
    }

    /// <summary>OpenAI's <c>AttentionPool2d</c>: the mean token prepended, positional embedding, one query attends over all positions.</summary>
    /// <param name="SpacialDim">Side of the final feature map (image_size / 32).</param>
    /// <param name="EmbedDim">Channels in (width·32).</param>
    public sealed record AttentionPool2dPlan(int SpacialDim, int EmbedDim, int Heads, int OutputDim)
    {
        public void WriteKeys(KeyWriter w)
        {
            w.Param("positional_embedding", new long[] { SpacialDim * SpacialDim + 1, EmbedDim });
            foreach (var n in new[] { "k_proj", "q_proj", "v_proj" })
                using (w.Scope(n))
                {
                    w.Param("weight", new long[] { EmbedDim, EmbedDim });
                    w.Param("bias", new long[] { EmbedDim });
                }
            using (w.Scope("c_proj"))
            {
                w.Param("weight", new long[] { OutputDim, EmbedDim });
                w.Param("bias", new long[] { OutputDim });
            }
        }
    }

    /// <summary>OpenAI's <c>ModifiedResNet</c>: 3-conv stem, four Bottleneck stages (<c>layer1</c>..<c>layer4</c>, strides 1, 2, 2, 2), attention pool.</summary>
    /// <param name="Width">Stem width; the first stage has Width planes.</param>
    public sealed record ResNetPlan(int ImageSize, int Width, EquatableArray<int> Layers, EquatableArray<EquatableArray<BottleneckPlan>> Stages, AttentionPool2dPlan AttnPool)
        : VisionPlan(ImageSize, AttnPool.OutputDim)
    {
        public static ResNetPlan Create(int imageSize, int width, IReadOnlyList<int> layers, int heads, int outputDim)
        {
            int inplanes = width;
            var stages = new List<EquatableArray<BottleneckPlan>>();
            for (int s = 0; s < 4; s++)
            {
                int planes = width << s, stride = s == 0 ? 1 : 2;
                var blocks = new List<BottleneckPlan>();
                for (int b = 0; b < layers[s]; b++)
                {
                    blocks.Add(new BottleneckPlan(inplanes, planes, b == 0 ? stride : 1));
                    inplanes = planes * BottleneckPlan.Expansion;
                }
                stages.Add(blocks.ToEquatableArray());
            }
            return new ResNetPlan(imageSize, width, layers.ToEquatableArray(), stages.ToEquatableArray(),
                new AttentionPool2dPlan(imageSize / 32, width * 32, heads, outputDim));
        }

        public override void WriteKeys(KeyWriter w, HfFamily hf)
        {
            long half = Width / 2;
            Conv(w, "conv1", half, 3, 3); BatchNorm(w, "bn1", half);
            Conv(w, "conv2", half, half, 3); BatchNorm(w, "bn2", half);
            Conv(w, "conv3", Width, half, 3); BatchNorm(w, "bn3", Width);
            for (int s = 0; s < Stages.Count; s++)
                for (int b = 0; b < Stages[s].Count; b++)
                    using (w.Scope("layer" + (s + 1).ToString(CultureInfo.InvariantCulture) + "." + b.ToString(CultureInfo.InvariantCulture)))
                        Stages[s][b].WriteKeys(w);
            using (w.Scope("attnpool")) AttnPool.WriteKeys(w);
        }

        internal static void Conv(KeyWriter w, string name, long cout, long cin, long k)
        {
            using (w.Scope(name)) w.Param("weight", new[] { cout, cin, k, k });
        }

        internal static void BatchNorm(KeyWriter w, string name, long c)
        {
            using (w.Scope(name))
            {
                w.Param("weight", new[] { c });
                w.Param("bias", new[] { c });
                w.Buffer("running_mean", new[] { c }, "float32");
                w.Buffer("running_var", new[] { c }, "float32");
                w.Buffer("num_batches_tracked", new long[0], "int64");
            }
        }
    }
}
