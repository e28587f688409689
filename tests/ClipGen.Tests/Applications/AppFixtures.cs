using System.Text.Json;
using ClipGen.Applications;
using ClipGen.Backends;

namespace ClipGen.Tests.Applications;

/// <summary>The reference models and files the application tests use.</summary>
static class AppFixtures
{
    public static string Vocab => Fixtures.Path_("vocab", "bpe_simple_vocab_16e6.txt.gz");

    public static string Weights(string folder) => Fixtures.Path_("reference", folder,
        folder.StartsWith("open_clip", StringComparison.Ordinal) ? "open_clip_model.safetensors" : "model.safetensors");

    public static string ModelOf(string folder) => folder.Split('/')[1];

    /// <summary>The captions the fixture's input_ids were tokenized from.</summary>
    public static string[] Captions(string folder)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Fixtures.Path_("reference", folder, "config.json")));
        return doc.RootElement.GetProperty("captions").EnumerateArray().Select(e => e.GetString()!).ToArray();
    }

    public static ClipPipeline Pipeline(string folder, BackendKind backend = BackendKind.Torch) =>
        ClipPipeline.Load(ModelOf(folder), Weights(folder), Vocab, backend);

    /// <summary>Real image files of the preprocessing fixtures.</summary>
    public static string[] Images => new[] { "coffee.png", "horse.png", "CLIP.png", "synth_q90_420.jpg" }
        .Select(n => Fixtures.Path_("preprocess", "images", n)).ToArray();
}
