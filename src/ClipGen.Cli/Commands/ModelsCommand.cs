using System.CommandLine;
using System.Globalization;
using ClipGen.Modeling;
using ClipGen.Specs;

namespace ClipGen.Cli.Commands;

/// <summary><c>clipgen models</c>: the compiled-in specs.</summary>
sealed class ModelsCommand : CliCommand
{
    readonly Option<bool> _json = CliOptions.Flag("--json", "print the list as JSON");
    readonly Option<bool> _pretrained = CliOptions.Flag("--pretrained", "each model's published weights by open_clip's tag (for download --pretrained TAG and ClipPipeline.LoadPretrainedAsync)");

    public ModelsCommand() : base("models", "list the compiled-in model specs")
    {
        Add(_json);
        Add(_pretrained);
    }

    public override int Run(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        var json = args.GetValue(_json);
        var pretrained = args.GetValue(_pretrained);
        var models = ModelRegistry.All;
        if (pretrained && !json)
        {
            foreach (var m in models.Where(m => m.Spec.Pretrained.Count > 0))
            {
                stdout.WriteLine(m.Name);
                foreach (var p in m.Spec.Pretrained)
                    stdout.WriteLine($"  {p.Source,-30} {(p.IsHub ? p.Repo : p.Url)} ({p.Format}{(p.Sha256.Length > 0 ? ", sha256 pinned" : "")})");
            }
            return 0;
        }
        if (json)
        {
            var rows = models.Select(m => new Dictionary<string, object>
            {
                ["name"] = m.Name,
                ["aliases"] = m.Aliases,
                ["tower"] = Tower(m.Spec),
                ["activation"] = Activation(m.Spec),
                ["loss"] = SpecWords.Loss[m.Spec.Loss],
                ["image_size"] = m.Spec.Vision.ImageSize,
                ["embed_dim"] = m.Spec.EmbedDim,
                ["parameters"] = m.ParameterCount,
                ["parameters_visual"] = ClipPlan.From(m.Spec).VisionParameterCount,
                ["pretrained"] = m.Spec.Pretrained.Select(p => p.Source).ToArray(),
            });
            stdout.WriteLine(System.Text.Json.JsonSerializer.Serialize(rows, new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
            return 0;
        }
        var table = new List<string[]> { new[] { "name", "aliases", "tower", "activation", "loss", "image", "embed", "parameters" } };
        foreach (var m in models)
            table.Add(new[]
            {
                m.Name, m.Aliases.Count == 0 ? "-" : string.Join(", ", m.Aliases), Tower(m.Spec),
                Activation(m.Spec), SpecWords.Loss[m.Spec.Loss],
                m.Spec.Vision.ImageSize.ToString(CultureInfo.InvariantCulture), m.Spec.EmbedDim.ToString(CultureInfo.InvariantCulture),
                FormatCount(m.ParameterCount),
            });
        var widths = Enumerable.Range(0, table[0].Length).Select(i => table.Max(r => r[i].Length)).ToArray();
        foreach (var row in table)
            stdout.WriteLine(string.Join("  ", row.Select((c, i) => i == row.Length - 1 ? c.PadLeft(widths[i]) : c.PadRight(widths[i]))).TrimEnd());
        return 0;
    }

    internal static string Tower(ClipSpec s) => s.Vision.Kind == VisionKind.VisionTransformer
        ? $"ViT/{s.Vision.PatchSize}" + (s.Vision.Pool == VisionPooling.ClassToken ? "" : " " + SpecWords.VisionPooling[s.Vision.Pool] + " pool")
        : $"ResNet[{string.Join(",", s.Vision.Layers)}]";

    /// <summary>The activation, or the image and text towers' when they differ (e.g. <c>gelu/gelu_tanh</c>).</summary>
    static string Activation(ClipSpec s) => s.Vision.Kind == VisionKind.ModifiedResNet || s.Vision.Activation == s.Text.Activation
        ? SpecWords.Activation[s.Text.Activation]
        : SpecWords.Activation[s.Vision.Activation] + "/" + SpecWords.Activation[s.Text.Activation];

    internal static string FormatCount(long n) => (n / 1e6).ToString("0.00", CultureInfo.InvariantCulture) + "M";
}
