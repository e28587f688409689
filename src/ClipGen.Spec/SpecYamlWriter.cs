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
            b.Append("activation: ").Append(s.Activation == ActivationKind.Gelu ? "gelu" : "quick_gelu").Append('\n');
            b.Append("init_logit_scale: ").Append(N(s.InitLogitScale)).Append('\n');
            if (s.Loss == LossKind.SigLip) b.Append("loss: siglip\ninit_logit_bias: ").Append(N(s.InitLogitBias)).Append('\n');
            b.Append("vision:\n");
            b.Append("  image_size: ").Append(s.Vision.ImageSize).Append('\n');
            if (s.Vision.Kind == VisionKind.VisionTransformer)
            {
                b.Append("  patch_size: ").Append(s.Vision.PatchSize).Append('\n');
                b.Append("  layers: ").Append(s.Vision.Layers[0]).Append('\n');
            }
            else b.Append("  layers: [").Append(string.Join(", ", s.Vision.Layers)).Append("]\n");
            b.Append("  width: ").Append(s.Vision.Width).Append('\n');
            b.Append("  head_width: ").Append(s.Vision.HeadWidth).Append('\n');
            if (s.Vision.Kind == VisionKind.VisionTransformer) b.Append("  mlp_ratio: ").Append(N(s.Vision.MlpRatio)).Append('\n');
            b.Append("text:\n");
            b.Append("  context_length: ").Append(s.Text.ContextLength).Append('\n');
            b.Append("  vocab_size: ").Append(s.Text.VocabSize).Append('\n');
            b.Append("  width: ").Append(s.Text.Width).Append('\n');
            b.Append("  heads: ").Append(s.Text.Heads).Append('\n');
            b.Append("  layers: ").Append(s.Text.Layers).Append('\n');
            b.Append("  mlp_ratio: ").Append(N(s.Text.MlpRatio)).Append('\n');
            b.Append("  pooling: ").Append(s.Text.Pooling == TextPooling.Eos ? "eos" : "argmax").Append('\n');
            // The default eos_id is left implicit, as in the source spec: the resolver checks only an explicit eos_id
            // against vocab_size, so writing the default for a small vocabulary would not read back (round trip).
            if (s.Text.EosId != SpecDefaults.EosId) b.Append("  eos_id: ").Append(s.Text.EosId).Append('\n');
            b.Append("  pad_id: ").Append(s.Text.PadId).Append('\n');
            b.Append("tokenizer:\n  kind: ").Append(s.Tokenizer.Kind).Append('\n');
            if (s.Tokenizer.File.Length > 0) b.Append("  file: ").Append(Q(s.Tokenizer.File)).Append('\n');
            if (s.Tokenizer.Clean.Length > 0) b.Append("  clean: ").Append(s.Tokenizer.Clean).Append('\n');
            if (s.Tokenizer.StripSepToken) b.Append("  strip_sep_token: true\n");
            b.Append("preprocess:\n");
            b.Append("  image_size: ").Append(s.Preprocess.ImageSize).Append('\n');
            b.Append("  mean: [").Append(string.Join(", ", s.Preprocess.Mean.Select(N))).Append("]\n");
            b.Append("  std: [").Append(string.Join(", ", s.Preprocess.Std.Select(N))).Append("]\n");
            b.Append("  interpolation: ").Append(s.Preprocess.Interpolation == InterpolationKind.Bilinear ? "bilinear" : "bicubic").Append('\n');
            b.Append("  resize_mode: ").Append(s.Preprocess.ResizeMode.ToString().ToLowerInvariant()).Append('\n');
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
