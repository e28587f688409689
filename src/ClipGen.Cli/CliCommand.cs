using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;

namespace ClipGen.Cli;

/// <summary>
/// A <c>clipgen</c> command: a System.CommandLine <see cref="Command"/> whose options are fields made with the typed factories
/// below (the parser checks every value before <see cref="Run"/> starts), and a body. Adding a command: a class deriving from this
/// one and one line in <see cref="CommandRegistry"/> (docs/cli.md).
/// </summary>
public abstract class CliCommand : Command
{
    readonly List<Option> _required = new();

    protected CliCommand(string name, string description) : base(name, description)
    {
        Validators.Add(r =>
        {
            foreach (var o in _required)
                if (r.GetResult(o) is null) r.AddError($"missing required option {o.Name}");
        });
        SetAction(parse =>
        {
            var stdout = parse.InvocationConfiguration.Output;
            var stderr = parse.InvocationConfiguration.Error;
            try { return Run(parse, stdout, stderr); }
            catch (Exception e) { return CliHost.Report(e, this, stderr); }
        });
    }

    /// <summary>The body, once the command line has parsed. Returns the exit code; a <see cref="CliUsageException"/> or a
    /// <see cref="ClipGenException"/> becomes a one-line error with exit code 2 (<see cref="CliHost.Report"/>).</summary>
    public abstract int Run(ParseResult args, TextWriter stdout, TextWriter stderr);

    /// <summary>Adds <paramref name="option"/> to the command and returns it (for field initializers).</summary>
    protected T Add<T>(T option) where T : Option
    {
        Options.Add(option);
        return option;
    }

    /// <summary>Adds an option that must be given ("missing required option --x" otherwise).</summary>
    protected T Required<T>(T option) where T : Option
    {
        option.Description = option.Description + " (required)";
        _required.Add(option);
        return Add(option);
    }

    /// <summary>The value of an option that <see cref="Required"/> made mandatory.</summary>
    protected static T Value<T>(ParseResult args, Option<T?> option) where T : class =>
        args.GetValue(option) ?? throw new CliUsageException($"missing required option {option.Name}");
}

/// <summary>
/// Typed options with ClipGen's messages: a value that does not parse is a usage error naming the option and the value,
/// reported before the command runs.
/// </summary>
public static class CliOptions
{
    /// <summary>A flag: present or not. It takes no value (<c>--flag true|false</c> is accepted, as System.CommandLine does for
    /// booleans); any other word after it is not swallowed, so it is an unexpected argument.</summary>
    public static Option<bool> Flag(string name, string description, params string[] aliases) =>
        new(name, aliases) { Description = description };

    /// <summary>A string value (a path, a name, a URL): the parser only checks that one is given.</summary>
    public static Option<string?> Text(string name, string helpName, string description, params string[] aliases) =>
        new(name, aliases) { Description = description, HelpName = helpName, Arity = Repeatable, CustomParser = r => r.Tokens[^1].Value };

    /// <summary>A string value that may be given many times (<c>--image a.jpg --image b.jpg</c>).</summary>
    public static Option<string[]> Many(string name, string helpName, string description, params string[] aliases) =>
        new(name, aliases) { Description = description, HelpName = helpName, Arity = ArgumentArity.OneOrMore, AllowMultipleArgumentsPerToken = false };

    /// <summary>A whole number, at least <paramref name="min"/>.</summary>
    public static Option<int> Int(string name, int fallback, string description, int min = int.MinValue, params string[] aliases) =>
        new(name, aliases)
        {
            Description = description,
            HelpName = "N",
            Arity = Repeatable,
            DefaultValueFactory = _ => fallback,
            CustomParser = r => ParseInt(r, name, min) ?? fallback,
        };

    /// <summary>A whole number at least <paramref name="min"/>, or null when not given.</summary>
    public static Option<int?> OptionalInt(string name, string description, int min = int.MinValue, params string[] aliases) =>
        new(name, aliases) { Description = description, HelpName = "N", Arity = Repeatable, CustomParser = r => ParseInt(r, name, min) };

    /// <summary>A number. NaN and infinities parse (as they always did); the library's settings checks refuse them where they matter
    /// (<c>TrainerOptions.Validate</c>), after the data's problems have been reported.</summary>
    public static Option<double> Number(string name, double fallback, string description, params string[] aliases) =>
        new(name, aliases)
        {
            Description = description,
            HelpName = "X",
            Arity = Repeatable,
            DefaultValueFactory = _ => fallback,
            CustomParser = r =>
            {
                var s = r.Tokens[^1].Value;
                if (double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v)) return v;
                r.AddError($"{name} takes a number, not '{ErrorText.Value(s)}'");
                return fallback;
            },
        };

    /// <summary>A thread count: a whole number from 1 to <see cref="Limits.MaxThreads"/> (4 per processor).</summary>
    public static Option<int?> Threads(string name, string description) =>
        new(name)
        {
            Description = description,
            HelpName = "N",
            Arity = Repeatable,
            CustomParser = r =>
            {
                var s = r.Tokens[^1].Value;
                if (int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out int v) && v >= 1 && v <= Limits.MaxThreads) return v;
                r.AddError($"{name} must be a whole number from 1 to {Limits.MaxThreads} (4 per processor; CLIPGEN_MAX_THREADS raises it), not '{ErrorText.Value(s)}'");
                return null;
            },
        };

    /// <summary>A value read by <paramref name="parse"/>, which throws <see cref="CliUsageException"/> or
    /// <see cref="ClipGenException"/> for a word it does not know; the message becomes the parser's error.</summary>
    public static Option<T> Parsed<T>(string name, string helpName, string description, Func<string, T> parse, T fallback, params string[] aliases) =>
        new(name, aliases)
        {
            Description = description,
            HelpName = helpName,
            Arity = Repeatable,
            DefaultValueFactory = _ => fallback,
            CustomParser = r =>
            {
                var s = r.Tokens[^1].Value;
                try { return parse(s); }
                catch (Exception e) when (e is CliUsageException or ClipGenException)
                {
                    r.AddError(e.Message);
                    return fallback;
                }
            },
        };

    /// <summary>A one-value option may be repeated, and the last value wins (as it always did): one value per occurrence.</summary>
    public static ArgumentArity Repeatable => ArgumentArity.OneOrMore;

    static int? ParseInt(ArgumentResult r, string name, int min)
    {
        var s = r.Tokens[^1].Value;
        if (!int.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v))
        {
            r.AddError($"{name} takes a whole number, not '{ErrorText.Value(s)}'");
            return null;
        }
        if (v < min)
        {
            r.AddError(min == 1 ? $"{name} must be positive, not {v}" : $"{name} must be at least {min}, not {v}");
            return null;
        }
        return v;
    }
}
