using System.Globalization;
using System.Linq;
using System.Text;

namespace ClipGen.Specs
{
    /// <summary>
    /// Writes a resolved spec as complete, canonical YAML (every field explicit except a default <c>eos_id</c> and
    /// <c>class_name</c>, no <c>extends</c>).
    /// Resolving the output gives back an equal spec (with an empty <c>Extends</c>).
    /// </summary>
    public static class SpecYamlWriter
    {
        public static string Write(ClipSpec s)
        {
            var b = new StringBuilder();
            b.Append("name: ").Append(Q(s.Name)).Append('\n');
            if (s.Aliases.Count > 0) b.Append("aliases: [").Append(string.Join(", ", s.Aliases.Select(Q))).Append("]\n");
            // A class_name other than the default must be kept, or the read-back spec names another class.
            if (s.ClassName != SpecResolver.DefaultClassName(s.Name)) b.Append("class_name: ").Append(s.ClassName).Append('\n');
            b.Append("embed_dim: ").Append(s.EmbedDim).Append('\n');
            b.Append("activation: ").Append(SpecWords.Activation[s.Activation]).Append('\n');
            b.Append("init_logit_scale: ").Append(N(s.InitLogitScale)).Append('\n');
            if (s.Loss == LossKind.SigLip) b.Append("loss: siglip\ninit_logit_bias: ").Append(N(s.InitLogitBias)).Append('\n');
            if (s.CustomText) b.Append("custom_text: true\n");
            var v = s.Vision;
            b.Append("vision:\n");
            b.Append("  image_size: ").Append(v.ImageSize).Append('\n');
            if (v.Kind == VisionKind.VisionTransformer)
            {
                b.Append("  patch_size: ").Append(v.PatchSize).Append('\n');
                b.Append("  layers: ").Append(v.Layers[0]).Append('\n');
            }
            else b.Append("  layers: [").Append(string.Join(", ", v.Layers)).Append("]\n");
            b.Append("  width: ").Append(v.Width).Append('\n');
            b.Append("  head_width: ").Append(v.HeadWidth).Append('\n');
            if (v.Kind == VisionKind.VisionTransformer)
            {
                b.Append("  mlp_ratio: ").Append(N(v.MlpRatio)).Append('\n');
                // The options below are written only where they differ from the defaults, so that OpenAI-style specs stay short.
                if (!v.ClassToken) b.Append("  class_token: false\n");
                if (v.Pool != (v.ClassToken ? VisionPooling.ClassToken : VisionPooling.Mean)) b.Append("  pool: ").Append(SpecWords.VisionPooling[v.Pool]).Append('\n');
                if (v.PatchBias) b.Append("  patch_bias: true\n");
                if (!v.LnPre) b.Append("  ln_pre: false\n");
                if (v.FinalLnAfterPool) b.Append("  final_ln_after_pool: true\n");
                if (v.LayerScale is double vls) b.Append("  layer_scale: ").Append(N(vls)).Append('\n');
                if (v.Proj != ProjectionKind.Linear) b.Append("  proj: ").Append(SpecWords.Projection[v.Proj]).Append('\n');
                if (v.TimmModelName.Length > 0) b.Append("  timm_model_name: ").Append(Q(v.TimmModelName)).Append('\n');
            }
            if (v.Kind == VisionKind.VisionTransformer && v.Activation != s.Activation) b.Append("  activation: ").Append(SpecWords.Activation[v.Activation]).Append('\n');
            if (v.NormEps != SpecDefaults.NormEps) b.Append("  norm_eps: ").Append(N(v.NormEps)).Append('\n');
            var t = s.Text;
            b.Append("text:\n");
            b.Append("  context_length: ").Append(t.ContextLength).Append('\n');
            b.Append("  vocab_size: ").Append(t.VocabSize).Append('\n');
            b.Append("  width: ").Append(t.Width).Append('\n');
            b.Append("  heads: ").Append(t.Heads).Append('\n');
            b.Append("  layers: ").Append(t.Layers).Append('\n');
            b.Append("  mlp_ratio: ").Append(N(t.MlpRatio)).Append('\n');
            b.Append("  pooling: ").Append(SpecWords.TextPooling[t.Pooling]).Append('\n');
            // The default eos_id is left implicit, as in the source spec: the resolver checks only an explicit eos_id
            // against vocab_size, so writing the default for a small vocabulary would not read back (round trip).
            if (t.EosId != SpecDefaults.EosIdOf(s.Tokenizer.Kind)) b.Append("  eos_id: ").Append(t.EosId).Append('\n');
            b.Append("  pad_id: ").Append(t.PadId).Append('\n');
            if (t.Activation != s.Activation) b.Append("  activation: ").Append(SpecWords.Activation[t.Activation]).Append('\n');
            if (!t.CausalMask) b.Append("  causal_mask: false\n");
            if (t.Proj != ProjectionKind.Linear) b.Append("  proj: ").Append(SpecWords.Projection[t.Proj]).Append('\n');
            if (t.ProjBias) b.Append("  proj_bias: true\n");
            if (t.NormEps != SpecDefaults.NormEps) b.Append("  norm_eps: ").Append(N(t.NormEps)).Append('\n');
            if (t.LayerScale is double tls) b.Append("  layer_scale: ").Append(N(tls)).Append('\n');
            b.Append("tokenizer:\n  kind: ").Append(s.Tokenizer.Kind).Append('\n');
            if (s.Tokenizer.File.Length > 0) b.Append("  file: ").Append(Q(s.Tokenizer.File)).Append('\n');
            if (s.Tokenizer.Clean.Length > 0) b.Append("  clean: ").Append(s.Tokenizer.Clean).Append('\n');
            if (s.Tokenizer.StripSepToken) b.Append("  strip_sep_token: true\n");
            b.Append("preprocess:\n");
            // Left implicit when it is the default (the image tower's size), so that a spec extending this one and changing the
            // tower's image_size also changes its preprocessing.
            if (s.Preprocess.ImageSize != s.Vision.ImageSize) b.Append("  image_size: ").Append(s.Preprocess.ImageSize).Append('\n');
            b.Append("  mean: [").Append(string.Join(", ", s.Preprocess.Mean.Select(N))).Append("]\n");
            b.Append("  std: [").Append(string.Join(", ", s.Preprocess.Std.Select(N))).Append("]\n");
            b.Append("  interpolation: ").Append(SpecWords.Interpolation[s.Preprocess.Interpolation]).Append('\n');
            b.Append("  resize_mode: ").Append(SpecWords.ResizeMode[s.Preprocess.ResizeMode]).Append('\n');
            b.Append("  fill_color: ").Append(s.Preprocess.FillColor).Append('\n');
            if (s.Pretrained.Count > 0)
            {
                b.Append("pretrained:\n");
                foreach (var p in s.Pretrained)
                {
                    b.Append("  ").Append(p.Source).Append(":\n");
                    if (p.IsHub)
                    {
                        b.Append("    repo: ").Append(Q(p.Repo)).Append('\n');
                        b.Append("    file: ").Append(Q(p.File)).Append('\n');
                        b.Append("    revision: ").Append(Q(p.Revision)).Append('\n');
                    }
                    else b.Append("    url: ").Append(Q(p.Url)).Append('\n');
                    if (p.Sha256.Length > 0) b.Append("    sha256: ").Append(p.Sha256).Append('\n');
                    b.Append("    format: ").Append(p.Format).Append('\n');
                    if (p.TokenizerFile.Length > 0) b.Append("    tokenizer_file: ").Append(Q(p.TokenizerFile)).Append('\n');
                }
            }
            return b.ToString();
        }

        static string N(double v) => v.ToString("R", CultureInfo.InvariantCulture);

        static string Q(string s) =>
            s.Length > 0 && s.All(c => char.IsLetterOrDigit(c) || c == '-' || c == '_' || c == '.' || c == '/' || c == '@') && !char.IsDigit(s[0])
                ? s : "\"" + s.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";
    }
}
