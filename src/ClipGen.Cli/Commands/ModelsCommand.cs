using System.Globalization;
using ClipGen.Modeling;
using ClipGen.Specs;

namespace ClipGen.Cli.Commands;

/// <summary><c>clipgen models</c>: the compiled-in specs.</summary>
sealed class ModelsCommand : ICommand
{
    public string Name => "models";
    public string Summary => "list the compiled-in model specs";
    public string Usage => "clipgen models [--json]";

    public int Run(CliArgs args, TextWriter stdout, TextWriter stderr)
    {
        var json = args.Has("json");
        args.RejectUnknown();
        var models = ModelRegistry.All;
        if (json)
        {
            var rows = models.Select(m => new Dictionary<string, object>
            {
                ["name"] = m.Name,
                ["aliases"] = m.Aliases,
                ["tower"] = Tower(m.Spec),
                ["activation"] = m.Spec.Activation == ActivationKind.Gelu ? "gelu" : "quick_gelu",
                ["image_size"] = m.Spec.Vision.ImageSize,
                ["embed_dim"] = m.Spec.EmbedDim,
                ["parameters"] = m.ParameterCount,
            });
            stdout.WriteLine(System.Text.Json.JsonSerializer.Serialize(rows, new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
            return 0;
        }
        var table = new List<string[]> { new[] { "name", "aliases", "tower", "activation", "image", "embed", "parameters" } };
        foreach (var m in models)
            table.Add(new[]
            {
                m.Name, m.Aliases.Count == 0 ? "-" : string.Join(", ", m.Aliases), Tower(m.Spec),
                m.Spec.Activation == ActivationKind.Gelu ? "gelu" : "quick_gelu",
                m.Spec.Vision.ImageSize.ToString(CultureInfo.InvariantCulture), m.Spec.EmbedDim.ToString(CultureInfo.InvariantCulture),
                FormatCount(m.ParameterCount),
            });
        var widths = Enumerable.Range(0, table[0].Length).Select(i => table.Max(r => r[i].Length)).ToArray();
        foreach (var row in table)
            stdout.WriteLine(string.Join("  ", row.Select((c, i) => i == row.Length - 1 ? c.PadLeft(widths[i]) : c.PadRight(widths[i]))).TrimEnd());
        return 0;
    }

    internal static string Tower(ClipSpec s) => s.Vision.Kind == VisionKind.VisionTransformer
        ? $"ViT/{s.Vision.PatchSize}"
        : $"ResNet[{string.Join(",", s.Vision.Layers)}]";

    internal static string FormatCount(long n) => (n / 1e6).ToString("0.00", CultureInfo.InvariantCulture) + "M";
}
