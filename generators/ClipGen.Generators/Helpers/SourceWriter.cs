using System;
using System.Text;

namespace ClipGen.Generators.Helpers
{
    /// <summary>An indented writer whose <see cref="Block"/> closes its brace when disposed.</summary>
    internal sealed class SourceWriter
    {
        readonly StringBuilder _sb = new StringBuilder();
        int _indent;

        public SourceWriter Line(string text = "")
        {
            if (text.Length > 0) _sb.Append(' ', _indent * 4).Append(text);
            _sb.Append('\n');
            return this;
        }

        public IDisposable Block(string header)
        {
            Line(header);
            Line("{");
            _indent++;
            return new Closer(this);
        }

        sealed class Closer : IDisposable
        {
            readonly SourceWriter _w;
            public Closer(SourceWriter w) { _w = w; }
            public void Dispose() { _w._indent--; _w.Line("}"); }
        }

        public override string ToString() => _sb.ToString();
    }
}
