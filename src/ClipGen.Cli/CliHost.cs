using System.CommandLine;
using System.CommandLine.Help;

namespace ClipGen.Cli;

/// <summary>
/// Entry point of <c>clipgen</c>: System.CommandLine parses and validates the command line (typed options, flags that take no
/// value, unknown options refused, <c>--help</c> generated for every command), then the command's <see cref="CliCommand.Run"/>
/// runs. Exit codes: 0 success, 2 bad input or usage, 1 internal error, 130 interrupted.
/// </summary>
public static class CliHost
{
    public static int Run(string[] argv, TextWriter stdout, TextWriter stderr)
    {
        var root = CommandRegistry.Root();
        var invocation = new InvocationConfiguration
        {
            Output = stdout,
            Error = stderr,
            EnableDefaultExceptionHandler = false, // CliCommand reports errors itself: one line, exit 2 or 1
            ProcessTerminationTimeout = null,      // long commands handle Ctrl+C themselves and keep their checkpoints
        };
        if (argv.Length == 0)
        {
            root.Parse(["--help"]).Invoke(invocation);
            return 2;
        }
        if (argv[0] == "help") argv = [.. argv.Skip(1), "--help"]; // 'clipgen help train' is 'clipgen train --help'

        // No response files: an argument that starts with '@' is a value, as it always was.
        var result = root.Parse(argv, new ParserConfiguration { ResponseFileTokenReplacer = null });
        if (result.Action is { ClearsParseErrors: true }) return result.Invoke(invocation); // --help, --version
        var errors = CliErrors.Describe(result);
        if (errors.Count > 0)
        {
            foreach (var e in errors) stderr.WriteLine($"error: {ErrorText.Message(e)}");
            // A wrong value is one line that says what the option takes; a wrong shape of command line points at the help.
            if (CliErrors.IsStructural(result)) stderr.WriteLine(CliErrors.HelpHint(result.CommandResult.Command));
            return 2;
        }
        return result.Invoke(invocation);
    }

    /// <summary>
    /// The one error path: bad input (a <see cref="ClipGenException"/>, a spec diagnostic, a file that cannot be read) is one
    /// line and exit code 2; a usage mistake adds where to find the command's options; anything else is a bug: "internal error",
    /// exit code 1. Every message goes through <see cref="ErrorText.Message"/> (control characters escaped, overlong text shortened).
    /// </summary>
    internal static int Report(Exception e, Command cmd, TextWriter stderr)
    {
        e = Unwrap(e);
        switch (e)
        {
            case CliUsageException:
                stderr.WriteLine($"error: {ErrorText.Message(e.Message)}");
                stderr.WriteLine(CliErrors.HelpHint(cmd));
                return 2;
            case ClipGenException or Specs.SpecException:
                stderr.WriteLine($"error: {ErrorText.Message(CliErrorHints.ForCli(e))}");
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
}

/// <summary>A usage mistake that the parser cannot see (options that exclude each other, …): exit code 2.</summary>
public sealed class CliUsageException(string message) : Exception(message);

/// <summary>The parser's findings as one-line messages in ClipGen's words.</summary>
static class CliErrors
{
    public static IReadOnlyList<string> Describe(ParseResult result)
    {
        var messages = new List<string>();
        var command = result.CommandResult.Command;
        // Unmatched tokens are described here in ClipGen's words, with "did you mean" for a misspelled option and the flag that
        // was given a value for a stray word; the parser's own "Unrecognized command or argument" errors for them are left out.
        var tokens = result.Tokens;
        foreach (var unmatched in result.UnmatchedTokens)
        {
            if (LooksLikeOption(unmatched)) messages.Add(UnknownOption(command, unmatched));
            else
            {
                int at = IndexOf(tokens, unmatched);
                var flag = at > 0 ? FlagNamed(command, tokens[at - 1].Value) : null;
                messages.Add(flag is not null
                    ? $"{flag.Name} is a flag and takes no value, not '{ErrorText.Value(unmatched)}' (give {flag.Name} alone, or {flag.Name} true|false)"
                    : command.Subcommands.Count > 0 && command.Arguments.Count == 0
                        ? UnknownCommand(command, unmatched)
                        : $"unexpected argument '{ErrorText.Value(unmatched)}'");
            }
        }
        // An unknown option before a command's positional arguments (tokenize's TEXT…) is taken as one of their values by the
        // parser; before a "--" separator it is an unknown option all the same.
        var positional = command.Arguments.SelectMany(a => result.GetResult(a)?.Tokens ?? []).Select(t => t.Value).ToHashSet(StringComparer.Ordinal);
        foreach (var t in result.Tokens)
        {
            if (t.Type == System.CommandLine.Parsing.TokenType.DoubleDash) break;
            if (t.Type == System.CommandLine.Parsing.TokenType.Argument && LooksLikeOption(t.Value) && positional.Contains(t.Value))
                messages.Add(UnknownOption(command, t.Value));
        }
        var parserWords = result.UnmatchedTokens.Select(UnrecognizedMessage).ToHashSet(StringComparer.Ordinal);
        foreach (var e in result.Errors)
            if (!parserWords.Contains(e.Message)) messages.Add(e.Message);
        return messages;
    }

    static bool LooksLikeOption(string token) =>
        token.StartsWith('-') && token.Length > 1 && !double.TryParse(token, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out _);

    static string UnknownOption(Command command, string token)
    {
        var name = token.Split('=', 2)[0];
        var near = Specs.SpecResolver.Nearest(name, OptionNames(command));
        return $"unknown option {ErrorText.Value(name)}" + (near is null ? "" : $" (did you mean {near}?)");
    }

    /// <summary>The parser's message for an unmatched token (in the parser's language), learnt from a probe parse.</summary>
    static string UnrecognizedMessage(string token) => UnrecognizedTemplate.Replace("\u0001", token, StringComparison.Ordinal);

    static readonly string UnrecognizedTemplate = new Command("probe").Parse(["\u0001"]).Errors.Select(e => e.Message).FirstOrDefault() ?? "";

    /// <summary>Unknown options or words, or a missing option or command, rather than a value the parser refused.</summary>
    public static bool IsStructural(ParseResult result) =>
        result.UnmatchedTokens.Count > 0 || result.Errors.Any(e => e.SymbolResult is null or System.CommandLine.Parsing.CommandResult)
        || Describe(result).Any(m => m.StartsWith("unknown option ", StringComparison.Ordinal));

    static string UnknownCommand(Command parent, string word)
    {
        var near = Specs.SpecResolver.Nearest(word, parent.Subcommands.Select(c => c.Name));
        return $"unknown command '{ErrorText.Value(word)}'" + (near is null ? "" : $" (did you mean '{near}'?)");
    }

    static int IndexOf(IReadOnlyList<System.CommandLine.Parsing.Token> tokens, string value)
    {
        for (int i = 0; i < tokens.Count; i++) if (tokens[i].Value == value) return i;
        return -1;
    }

    static IEnumerable<Option> AllOptions(Command command)
    {
        foreach (var o in command.Options) yield return o;
        for (var p = command.Parents.OfType<Command>().FirstOrDefault(); p is not null; p = p.Parents.OfType<Command>().FirstOrDefault())
            foreach (var o in p.Options.Where(o => o.Recursive)) yield return o;
    }

    static IEnumerable<string> OptionNames(Command command) =>
        AllOptions(command).Where(o => o is not HelpOption and not VersionOption).SelectMany(o => o.Aliases.Prepend(o.Name)).Where(n => n.StartsWith("--", StringComparison.Ordinal));

    static Option? FlagNamed(Command command, string token) =>
        AllOptions(command).FirstOrDefault(o => o.ValueType == typeof(bool) && (o.Name == token || o.Aliases.Contains(token)));

    /// <summary>Where the command's options are described.</summary>
    public static string HelpHint(Command command)
    {
        var path = new List<string>();
        for (Command? c = command; c?.Parents.OfType<Command>().FirstOrDefault() is { } parent; c = parent) path.Insert(0, c.Name);
        return path.Count == 0 ? "Run 'clipgen --help' for the commands." : $"Run 'clipgen {string.Join(' ', path)} --help' for its options.";
    }
}
