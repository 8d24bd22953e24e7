"""What every package's command line shares: the consoles and progress bars (`output`), the caller's
identity check that refuses in one line (`access`), and how a command ends on an error (`errors`, run by
`entry`)."""
