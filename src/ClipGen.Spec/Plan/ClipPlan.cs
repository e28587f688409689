using System;
using System.Collections.Generic;
using System.Linq;

namespace ClipGen.Specs
{
    /// <summary>
    /// A spec resolved once into the architecture: every derived number (heads, grids, MLP widths, sequence lengths), every block
    /// option, and every key with its name in each published layout. The TorchSharp modules, the ONNX emitters, the key tables,
    /// the checkpoint mappings and the generated code all read this plan; none of them derives anything from the spec again.
    /// Plain data with value equality.
    /// </summary>
    public sealed record ClipPlan(
        string Name, int EmbedDim, VisionPlan Vision, TextPlan Text, bool LogitBias, double InitLogitScale, double InitLogitBias,
        HfFamily HuggingFace, string HuggingFaceUnsupported, string OpenClipUnsupported, EquatableArray<PlannedKey> Keys)
    {
        /// <summary>The plan of a resolved spec.</summary>
        public static ClipPlan From(ClipSpec spec)
        {
            var v = spec.Vision;
            VisionPlan vision;
            if (v.Kind == VisionKind.VisionTransformer)
            {
                int heads = v.Width / v.HeadWidth, mlp = (int)(v.Width * v.MlpRatio), grid = v.ImageSize / v.PatchSize;
                var transformer = TransformerPlan.Create(v.Width, v.Layers[0], heads, mlp, v.Activation, v.NormEps, v.LayerScale, causal: false);
                var pool = v.Pool == VisionPooling.Attention
                    ? new AttentionPoolPlan(new AttentionPlan(v.Width, heads, Causal: false, LatentQuery: true), new LayerNormPlan(v.Width, v.NormEps), new MlpPlan(v.Width, mlp, v.Activation))
                    : null;
                bool proj = v.Proj == ProjectionKind.Linear;
                vision = new VitPlan(v.ImageSize, v.PatchSize, grid, v.Width, v.ClassToken, v.PatchBias, v.LnPre ? new LayerNormPlan(v.Width, v.NormEps) : null,
                    transformer, v.Pool, pool, new LayerNormPlan(v.Width, v.NormEps), v.FinalLnAfterPool, proj, proj ? spec.EmbedDim : v.Width,
                    v.TimmModelName.Length > 0);
            }
            else
            {
                vision = ResNetPlan.Create(v.ImageSize, v.Width, v.Layers.ToArray(), v.Width * 32 / v.HeadWidth, spec.EmbedDim);
            }

            var t = spec.Text;
            var text = new TextPlan(t.ContextLength, t.VocabSize, t.Width,
                TransformerPlan.Create(t.Width, t.Layers, t.Heads, (int)(t.Width * t.MlpRatio), t.Activation, t.NormEps, t.LayerScale, t.CausalMask),
                new LayerNormPlan(t.Width, t.NormEps), t.Pooling, t.EosId, t.PadId, t.Proj, t.ProjBias, t.Proj == ProjectionKind.Linear ? spec.EmbedDim : t.Width);

            var (hf, why) = HuggingFaceFamily(spec, vision, text);
            bool bias = spec.Loss == LossKind.SigLip;
            var keys = WriteKeys(vision, text, bias, spec.CustomText, hf);
            return new ClipPlan(spec.Name, spec.EmbedDim, vision, text, bias, spec.InitLogitScale, spec.InitLogitBias, hf, why, OpenClipProblem(spec, vision), keys);
        }

        static EquatableArray<PlannedKey> WriteKeys(VisionPlan vision, TextPlan text, bool logitBias, bool customText, HfFamily hf)
        {
            var w = new KeyWriter();
            string? hfRoot = hf == HfFamily.None ? null : "";
            // OpenAI's state_dict order: CLIP's own parameters (the text tower's, then logit_scale), then its children.
            using (w.Tower("", customText ? "text" : "", hf == HfFamily.None ? null : "text_model")) text.WriteParameters(w, hf);
            using (w.Tower("", "", hfRoot))
            {
                w.Param("logit_scale", new long[0]);
                if (logitBias) w.Param("logit_bias", new long[0], hf: hf == HfFamily.Siglip ? null : Alt.None);
            }
            bool timm = vision is VitPlan vit && vit.Timm;
            using (w.Tower("visual", "visual", hf == HfFamily.None ? null : "vision_model", timm)) vision.WriteKeys(w, hf);
            using (w.Tower("", customText ? "text" : "", hf == HfFamily.None ? null : "text_model")) text.WriteModules(w, hf);
            return w.Keys.ToEquatableArray();
        }

        /// <summary>Attention heads of the image tower (the ViT's blocks, or the ResNet's attention pool).</summary>
        public int VisionHeads => Vision is VitPlan v ? v.Heads : ((ResNetPlan)Vision).AttnPool.Heads;

        /// <summary>The ViT's MLP width (0 for a ResNet).</summary>
        public int VisionMlpWidth => Vision is VitPlan v ? v.Transformer.Block.Mlp.Hidden : 0;

        /// <summary>The model's own state_dict entries (OpenAI's names), in PyTorch's order.</summary>
        public IEnumerable<KeyEntry> KeyTable => Keys.Select(k => k.Entry);

        /// <summary>Trainable parameters (buffers excluded), as <c>sum(p.numel() for p in model.parameters())</c>.</summary>
        public long ParameterCount => Keys.Where(k => k.Entry.Kind == KeyKind.Parameter).Sum(k => k.Entry.Elements);

        /// <summary>Parameters of the image tower (open_clip's <c>params_visual</c>).</summary>
        public long VisionParameterCount => Keys.Where(k => k.Entry.Kind == KeyKind.Parameter && k.Entry.Key.StartsWith("visual.", StringComparison.Ordinal)).Sum(k => k.Entry.Elements);

        /// <summary>Bytes of the model's float32 weights and buffers.</summary>
        public long WeightBytes => Keys.Sum(k => k.Entry.Elements * (k.Entry.DType == "int64" ? 8 : 4));

        /// <summary>
        /// Whether the layout can hold this model: OpenAI's always; open_clip's always; Hugging Face's for a model of
        /// <c>CLIPModel</c>'s or <c>SiglipModel</c>'s shape. <paramref name="why"/> says what is missing.
        /// </summary>
        public bool Supports(WeightLayout layout, out string why)
        {
            why = layout == WeightLayout.HuggingFace ? HuggingFaceUnsupported : layout == WeightLayout.OpenClip ? OpenClipUnsupported : "";
            return why.Length == 0;
        }

        /// <summary>Why open_clip's own ViT cannot hold the image tower (it always has a class token, no patch bias, no MAP head), or "".</summary>
        static string OpenClipProblem(ClipSpec spec, VisionPlan vision)
        {
            if (!(vision is VitPlan v) || v.Timm) return "";
            var missing = new List<string>();
            if (!v.ClassToken) missing.Add("a ViT without class token");
            if (v.PatchBias) missing.Add("a patch bias");
            if (v.Pool == VisionPooling.Attention) missing.Add("the attention-pool head");
            return missing.Count == 0 ? ""
                : "open_clip's own VisionTransformer cannot hold spec '" + spec.Name + "': it has no " + string.Join(", ", missing) +
                  "; open_clip stores such towers as timm models (set vision.timm_model_name)";
        }

        /// <summary>Which Hugging Face class can hold the model, or why none can.</summary>
        static (HfFamily, string) HuggingFaceFamily(ClipSpec spec, VisionPlan vision, TextPlan text)
        {
            if (!(vision is VitPlan v))
                return (HfFamily.None, "spec '" + spec.Name + "' has a ModifiedResNet image tower, which Hugging Face's CLIPModel does not have (it has only ViT CLIPs); use OpenAI or open_clip files for ResNet models");
            var missing = new List<string>();
            if (v.Pool == VisionPooling.Attention)
            {
                // SiglipModel: timm-style ViT with the MAP head, a non-causal text tower pooled on its last token, a Linear text head.
                if (v.ClassToken) missing.Add("a class token");
                if (!v.PatchBias) missing.Add("a patch embedding without bias");
                if (v.LnPre != null) missing.Add("ln_pre");
                if (v.FinalLnAfterPool) missing.Add("final_ln_after_pool");
                if (v.Proj) missing.Add("an image projection");
                if (spec.Vision.LayerScale != null || spec.Text.LayerScale != null) missing.Add("LayerScale");
                if (text.Causal) missing.Add("a causal text mask");
                if (text.Pooling != TextPooling.Last) missing.Add("text pooling '" + SpecWords.TextPooling[text.Pooling] + "'");
                if (!(text.Proj == ProjectionKind.Linear && text.ProjBias)) missing.Add("a text projection other than a Linear with bias");
                if (spec.Loss != LossKind.SigLip) missing.Add("no logit_bias (loss: clip)");
                return missing.Count == 0 ? (HfFamily.Siglip, "")
                    : (HfFamily.None, "spec '" + spec.Name + "' pools with an attention head like SigLIP, but Hugging Face's SiglipModel has no " + string.Join(", ", missing));
            }
            if (!v.ClassToken || v.Pool != VisionPooling.ClassToken) missing.Add("image pooling '" + SpecWords.VisionPooling[v.Pool] + "'");
            if (v.PatchBias) missing.Add("a patch bias");
            if (v.LnPre == null) missing.Add("a ViT without ln_pre");
            if (!v.Proj) missing.Add("a ViT without projection");
            if (spec.Vision.LayerScale != null || spec.Text.LayerScale != null) missing.Add("LayerScale");
            if (!text.Causal) missing.Add("a non-causal text tower");
            if (text.Pooling != TextPooling.Argmax && text.Pooling != TextPooling.Eos) missing.Add("text pooling '" + SpecWords.TextPooling[text.Pooling] + "'");
            if (text.Proj != ProjectionKind.Linear || text.ProjBias) missing.Add("a text projection other than a matrix without bias");
            if (spec.Loss == LossKind.SigLip) missing.Add("logit_bias");
            return missing.Count == 0 ? (HfFamily.Clip, "")
                : (HfFamily.None, "Hugging Face's CLIPModel cannot hold spec '" + spec.Name + "': it has no " + string.Join(", ", missing));
        }
    }

    /// <summary>The key table of a spec: its plan's keys (kept as the entry point the generator and older callers use).</summary>
    public static class KeyTable
    {
        /// <summary>Every state_dict key of the spec's model, in PyTorch's order, with its shape and dtype.</summary>
        public static IReadOnlyList<KeyEntry> Build(ClipSpec spec) => ClipPlan.From(spec).KeyTable.ToList();

        /// <summary>Number of trainable parameters (buffers excluded).</summary>
        public static long ParameterCount(ClipSpec spec) => ClipPlan.From(spec).ParameterCount;
    }
}
