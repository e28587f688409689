using ClipGen.Imaging;
using ClipGen.IO;
using ClipGen.Modeling;

namespace ClipGen.Cli.Commands;

/// <summary><c>clipgen preprocess</c>: one image to a safetensors file holding <c>pixel_values</c> float32 [1, 3, S, S].</summary>
sealed class PreprocessCommand : ICommand
{
    public string Name => "preprocess";
    public string Summary => "Preprocess an image like OpenAI CLIP (PIL + torchvision) into pixel_values.safetensors";
    public string Usage => "clipgen preprocess --image FILE --output FILE.safetensors [--model <name|alias|spec.yaml>] [--image-size 224] [--interpolation bicubic|bilinear] [--resize-mode shortest|longest|squash]";

    public int Run(CliArgs args, TextWriter stdout, TextWriter stderr)
    {
        var image = args.Require("image");
        var output = args.Require("output");
        // The model's spec gives every setting (size, mean, std, interpolation, resize mode); explicit options override it.
        var model = args.Get("model");
        var baseOptions = model is null ? PreprocessOptions.OpenAI : ClipModelFactory.ResolveSpec(model).ToPreprocessOptions();
        var options = baseOptions with
        {
            ImageSize = args.GetInt("image-size", baseOptions.ImageSize),
            Interpolation = ParseEnum<Interpolation>(args, "interpolation", baseOptions.Interpolation),
            ResizeMode = ParseEnum<ResizeMode>(args, "resize-mode", baseOptions.ResizeMode),
        };
        args.RejectUnknown();

        var pre = new ImagePreprocessor(options);
        var pixels = pre.Preprocess(image);
        int s = options.ImageSize;
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["image"] = Path.GetFileName(image),
            ["image_size"] = s.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["interpolation"] = options.Interpolation.ToString().ToLowerInvariant(),
            ["resize_mode"] = options.ResizeMode.ToString().ToLowerInvariant(),
        };
        SafeTensorsWriter.Write(output, [SafeTensor.F32("pixel_values", pixels, 1, 3, s, s)], metadata);
        stdout.WriteLine($"wrote {output}: pixel_values float32 [1, 3, {s}, {s}]");
        return 0;
    }

    static T ParseEnum<T>(CliArgs args, string key, T fallback) where T : struct, Enum
    {
        var s = args.Get(key);
        if (s is null) return fallback;
        foreach (var v in Enum.GetValues<T>())
            if (string.Equals(v.ToString(), s, StringComparison.OrdinalIgnoreCase)) return v;
        var names = string.Join("|", Enum.GetNames<T>().Select(n => n.ToLowerInvariant()));
        throw new CliUsageException($"--{key} takes {names}, not '{s}'");
    }
}
