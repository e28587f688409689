using System.CommandLine;
using ClipGen.Imaging;
using ClipGen.IO;
using ClipGen.Modeling;

namespace ClipGen.Cli.Commands;

/// <summary><c>clipgen preprocess</c>: one image to a safetensors file holding <c>pixel_values</c> float32 [1, 3, S, S].</summary>
sealed class PreprocessCommand : CliCommand
{
    readonly Option<string?> _image = CliOptions.Text("--image", "FILE", "the image");
    readonly Option<string?> _output = CliOptions.Text("--output", "FILE.safetensors", "where pixel_values go");
    readonly Option<string?> _model = CliOptions.Text("--model", "name|alias|spec.yaml", "take every setting from the model's spec (default: OpenAI CLIP's)");
    readonly Option<int?> _imageSize = CliOptions.OptionalInt("--image-size", "the output's side (default 224, or the spec's)", min: 1);
    readonly Option<Interpolation?> _interpolation = Choice<Interpolation>("--interpolation", "bicubic or bilinear resizing (default bicubic, or the spec's)");
    readonly Option<ResizeMode?> _resizeMode = Choice<ResizeMode>("--resize-mode", "shortest, longest or squash (default shortest, or the spec's)");

    public PreprocessCommand() : base("preprocess", "Preprocess an image like OpenAI CLIP (PIL + torchvision) into pixel_values.safetensors")
    {
        Required(_image);
        Required(_output);
        foreach (var o in new Option[] { _model, _imageSize, _interpolation, _resizeMode }) Add(o);
    }

    public override int Run(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        var image = Value(args, _image);
        var output = Value(args, _output);
        // The model's spec gives every setting (size, mean, std, interpolation, resize mode); explicit options override it.
        var model = args.GetValue(_model);
        var baseOptions = model is null ? PreprocessOptions.OpenAI : ClipModelFactory.ResolveSpec(model).ToPreprocessOptions();
        var options = baseOptions with
        {
            ImageSize = args.GetValue(_imageSize) ?? baseOptions.ImageSize,
            Interpolation = args.GetValue(_interpolation) ?? baseOptions.Interpolation,
            ResizeMode = args.GetValue(_resizeMode) ?? baseOptions.ResizeMode,
        };

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

    static Option<T?> Choice<T>(string name, string description) where T : struct, Enum
    {
        var names = string.Join("|", Enum.GetNames<T>().Select(n => n.ToLowerInvariant()));
        return CliOptions.Parsed<T?>(name, names, description, s =>
        {
            foreach (var v in Enum.GetValues<T>())
                if (string.Equals(v.ToString(), s, StringComparison.OrdinalIgnoreCase)) return v;
            throw new CliUsageException($"{name} takes {names}, not '{ErrorText.Value(s)}'");
        }, null);
    }
}
