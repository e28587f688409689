namespace ClipGen.Cli;

/// <summary>A CLI command: a name, a one-line summary, usage text and a body.</summary>
public interface ICommand
{
    string Name { get; }
    string Summary { get; }
    string Usage { get; }
    int Run(CliArgs args, TextWriter stdout, TextWriter stderr);
}

/// <summary>Entry point of <c>clipgen</c>. Exit codes: 0 success, 2 bad input or usage, 1 internal error.</summary>
public static class CliHost
{
    /// <summary>Every command. Add a command by adding a class and one line here.</summary>
    public static IReadOnlyList<ICommand> Commands { get; } = CommandRegistry.All();

    public static int Run(string[] argv, TextWriter stdout, TextWriter stderr)
    {
        if (argv.Length == 0 || argv[0] is "-h" or "--help" or "help")
        {
            PrintHelp(stdout);
            return argv.Length == 0 ? 2 : 0;
        }
        if (argv[0] is "--version")
        {
            stdout.WriteLine(typeof(CliHost).Assembly.GetName().Version);
            return 0;
        }
        // Two-word commands ("spec infer") are matched first.
        ICommand? cmd = null;
        int consumed = 1;
        if (argv.Length > 1)
        {
            cmd = Commands.FirstOrDefault(c => c.Name == argv[0] + " " + argv[1]);
            if (cmd is not null) consumed = 2;
        }
        cmd ??= Commands.FirstOrDefault(c => c.Name == argv[0]);
        if (cmd is null)
        {
            var near = Specs.SpecResolver.Nearest(argv[0], Commands.Select(c => c.Name));
            stderr.WriteLine(ErrorText.Message($"error: unknown command '{ErrorText.Value(argv[0])}'" + (near is null ? "" : $" (did you mean '{near}'?)") + ". Run 'clipgen --help'."));
            return 2;
        }
        try
        {
            var args = CliArgs.Parse(argv.Skip(consumed).ToArray());
            if (args.Has("help") || args.Has("h"))
            {
                stdout.WriteLine($"clipgen {cmd.Name}: {cmd.Summary}");
                stdout.WriteLine(cmd.Usage);
                return 0;
            }
            return cmd.Run(args, stdout, stderr);
        }
        catch (Exception e)
        {
            return Report(Unwrap(e), cmd, stderr);
        }
    }

    /// <summary>
    /// The one error path: bad input (a <see cref="ClipGenException"/>, a spec diagnostic, a file that cannot be read) is one
    /// line and exit code 2; a usage mistake adds the usage; anything else is a bug: "internal error", exit code 1. Every message
    /// goes through <see cref="ErrorText.Message"/> (control characters escaped, overlong text shortened).
    /// </summary>
    static int Report(Exception e, ICommand cmd, TextWriter stderr)
    {
        switch (e)
        {
            case CliUsageException:
                stderr.WriteLine($"error: {ErrorText.Message(e.Message)}");
                stderr.WriteLine($"usage: {cmd.Usage}");
                return 2;
            case ClipGenException or Specs.SpecException:
                stderr.WriteLine($"error: {ErrorText.Message(e.Message)}");
                return 2;
            case OperationCanceledException:
                stderr.WriteLine("cancelled.");
                return 130;
            case IOException or UnauthorizedAccessException:
                stderr.WriteLine($"error: {ErrorText.Message(e.Message)}");
                return 2;
            default:
                stderr.WriteLine($"internal error ({e.GetType().Name}): {ErrorText.Message(e.Message)}");
                if (Environment.GetEnvironmentVariable("CLIPGEN_DEBUG") == "1") stderr.WriteLine(e);
                else stderr.WriteLine("set CLIPGEN_DEBUG=1 for the stack trace, and please report it.");
                return 1;
        }
    }

    /// <summary>A failure on a worker thread arrives wrapped; the error is the first inner one.</summary>
    static Exception Unwrap(Exception e)
    {
        for (int i = 0; i < 16; i++)
        {
            if (e is AggregateException { InnerExceptions.Count: > 0 } a) e = a.InnerExceptions[0];
            else if (e is System.Reflection.TargetInvocationException { InnerException: { } inner }) e = inner;
            else break;
        }
        return e;
    }

    static void PrintHelp(TextWriter w)
    {
        w.WriteLine("clipgen: CLIP models from YAML specs, on TorchSharp and ONNX Runtime.");
        w.WriteLine();
        w.WriteLine("commands:");
        foreach (var c in Commands) w.WriteLine($"  {c.Name,-14} {c.Summary}");
        w.WriteLine();
        w.WriteLine("Run 'clipgen <command> --help' for a command's options.");
    }
}

/// <summary>A usage mistake (missing or unknown option): printed with the command's usage, exit code 2.</summary>
public sealed class CliUsageException(string message) : Exception(message);

/// <summary>Parsed <c>--key value</c>, <c>--flag</c> and positional arguments. Options may repeat.</summary>
public sealed class CliArgs
{
    readonly Dictionary<string, List<string>> _options = new(StringComparer.Ordinal);
    readonly HashSet<string> _read = new(StringComparer.Ordinal);
    public List<string> Positional { get; } = new();

    /// <summary>Options that take no value.</summary>
    public static readonly HashSet<string> Flags = new(StringComparer.Ordinal) { "json", "help", "h", "keep-dtype", "strict", "no-truncate", "quiet", "force", "fp16", "hnsw", "int8", "exact" };

    public static CliArgs Parse(string[] argv)
    {
        var a = new CliArgs();
        for (int i = 0; i < argv.Length; i++)
        {
            var t = argv[i];
            if (t.StartsWith("--", StringComparison.Ordinal) || (t.StartsWith('-') && t.Length == 2 && !char.IsDigit(t[1])))
            {
                var key = t.TrimStart('-');
                string? value = null;
                var eq = key.IndexOf('=');
                if (eq >= 0) { value = key[(eq + 1)..]; key = key[..eq]; }
                else if (!Flags.Contains(key))
                {
                    if (i + 1 >= argv.Length) throw new CliUsageException($"option --{key} needs a value");
                    value = argv[++i];
                }
                if (!a._options.TryGetValue(key, out var list)) a._options[key] = list = new();
                list.Add(value ?? "true");
            }
            else a.Positional.Add(t);
        }
        return a;
    }

    public bool Has(string key) { _read.Add(key); return _options.ContainsKey(key); }
    public string? Get(string key) { _read.Add(key); return _options.TryGetValue(key, out var v) ? v[^1] : null; }
    public IReadOnlyList<string> GetAll(string key) { _read.Add(key); return _options.TryGetValue(key, out var v) ? v : []; }
    public string Require(string key) => Get(key) ?? throw new CliUsageException($"missing required option --{key}");

    public int GetInt(string key, int fallback)
    {
        var s = Get(key);
        if (s is null) return fallback;
        return int.TryParse(s, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var v)
            ? v : throw new CliUsageException($"--{key} takes a whole number, not '{s}'");
    }

    public double GetDouble(string key, double fallback)
    {
        var s = Get(key);
        if (s is null) return fallback;
        return double.TryParse(s, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var v)
            ? v : throw new CliUsageException($"--{key} takes a number, not '{s}'");
    }

    /// <summary>Call after reading every option: an option the command never asked for is a usage error.</summary>
    public void RejectUnknown()
    {
        var unknown = _options.Keys.Where(k => !_read.Contains(k)).ToList();
        if (unknown.Count > 0) throw new CliUsageException($"unknown option --{unknown[0]}");
    }
}
