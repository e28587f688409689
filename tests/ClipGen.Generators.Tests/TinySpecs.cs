namespace ClipGen.Generators.Tests;

/// <summary>Small valid specs whose line numbers the diagnostics tests rely on (see the comments).</summary>
public static class TinySpecs
{
    /// <summary>A tiny ViT (class TinyA). Line numbers: 3 embed_dim, 4 activation, 8 patch_size, 10 vision width, 11 head_width, 17 text layers.</summary>
    public const string Vit =
        "name: tiny-a\n" +                              // 1
        "class_name: TinyA\n" +                         // 2
        "embed_dim: 16\n" +                             // 3
        "activation: gelu\n" +                          // 4
        "init_logit_scale: 2.6592600369262695\n" +      // 5
        "vision:\n" +                                   // 6
        "  image_size: 32\n" +                          // 7
        "  patch_size: 8\n" +                           // 8
        "  layers: 2\n" +                               // 9
        "  width: 32\n" +                               // 10
        "  head_width: 16\n" +                          // 11
        "text:\n" +                                     // 12
        "  context_length: 8\n" +                       // 13
        "  vocab_size: 50\n" +                          // 14
        "  width: 16\n" +                               // 15
        "  heads: 2\n" +                                // 16
        "  layers: 1\n" +                               // 17
        "tokenizer:\n" +                                // 18
        "  kind: clip_bpe\n" +                          // 19
        "preprocess:\n" +                               // 20
        "  mean: [0.48145466, 0.4578275, 0.40821073]\n" + // 21
        "  std: [0.26862954, 0.26130258, 0.27577711]\n" + // 22
        "  interpolation: bicubic\n" +                  // 23
        "  resize_mode: shortest\n";                    // 24

    /// <summary>A tiny ModifiedResNet (class TinyB). Line 8 holds the four vision layers.</summary>
    public const string ResNet =
        "name: tiny-b\n" +                              // 1
        "class_name: TinyB\n" +                         // 2
        "embed_dim: 16\n" +                             // 3
        "activation: quick_gelu\n" +                    // 4
        "init_logit_scale: 2.6592600369262695\n" +      // 5
        "vision:\n" +                                   // 6
        "  image_size: 64\n" +                          // 7
        "  layers: [1, 1, 1, 1]\n" +                    // 8
        "  width: 8\n" +                                // 9
        "  head_width: 32\n" +                          // 10
        "text:\n" +                                     // 11
        "  context_length: 8\n" +                       // 12
        "  vocab_size: 50\n" +                          // 13
        "  width: 16\n" +                               // 14
        "  heads: 2\n" +                                // 15
        "  layers: 1\n" +                               // 16
        "tokenizer:\n" +                                // 17
        "  kind: clip_bpe\n" +                          // 18
        "preprocess:\n" +                               // 19
        "  mean: [0.48145466, 0.4578275, 0.40821073]\n" + // 20
        "  std: [0.26862954, 0.26130258, 0.27577711]\n" + // 21
        "  interpolation: bicubic\n" +                  // 22
        "  resize_mode: shortest\n";                    // 23

    /// <summary>Replaces one whole line (which must occur exactly once) of a spec.</summary>
    public static string ReplaceLine(this string yaml, string oldLine, string newLine)
    {
        var lines = yaml.Split('\n').ToList();
        var hits = lines.Select((l, i) => (l, i)).Where(x => x.l == oldLine).ToList();
        if (hits.Count != 1) throw new ArgumentException($"line '{oldLine}' occurs {hits.Count} times");
        lines[hits[0].i] = newLine;
        return string.Join("\n", lines);
    }

    /// <summary>Deletes one whole line of a spec.</summary>
    public static string RemoveLine(this string yaml, string line)
    {
        var lines = yaml.Split('\n').ToList();
        if (lines.Count(l => l == line) != 1) throw new ArgumentException($"line '{line}' must occur once");
        lines.Remove(line);
        return string.Join("\n", lines);
    }
}
