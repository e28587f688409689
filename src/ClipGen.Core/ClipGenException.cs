namespace ClipGen;

/// <summary>
/// An error caused by the user's input (a spec, a checkpoint, an image, a CSV, an argument).
/// Its message is one line that names the file, key, line or value at fault; the CLI prints it and exits with code 2.
/// The message is passed through <see cref="ErrorText.Message"/>: control characters escaped, overlong text shortened.
/// </summary>
public class ClipGenException : Exception
{
    public ClipGenException(string message) : base(ErrorText.Message(message)) { }
    public ClipGenException(string message, Exception inner) : base(ErrorText.Message(message), inner) { }
}
