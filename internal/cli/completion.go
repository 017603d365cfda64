package cli

import (
	"fmt"

	"github.com/fleet-deploy/fleet/runtime"
	"github.com/urfave/cli/v2"
)

// bashCompletion is urfave/cli's completion protocol: the shell asks
// fleet itself for the words that may follow.
const bashCompletion = `_fleet() {
  local cur words
  COMPREPLY=()
  cur="${COMP_WORDS[COMP_CWORD]}"
  words=$("${COMP_WORDS[0]}" "${COMP_WORDS[@]:1:$COMP_CWORD-1}" --generate-bash-completion 2>/dev/null)
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
  [ ${#COMPREPLY[@]} -eq 0 ] && COMPREPLY=($(compgen -f -- "$cur"))
  return 0
}
complete -o filenames -F _fleet fleet
`

const zshCompletion = `#compdef fleet
_fleet() {
  local -a opts
  opts=("${(@f)$(${words[1]} ${words[@]:1:$CURRENT-2} --generate-bash-completion 2>/dev/null)}")
  _describe 'values' opts
  _files
}
compdef _fleet fleet
`

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash or zsh)",
		ArgsUsage: "bash|zsh",
		Description: `Examples:
  source <(fleet completion bash)
  fleet completion zsh > "${fpath[1]}/_fleet"`,
		Action: func(c *cli.Context) error {
			switch c.Args().First() {
			case "bash":
				fmt.Fprint(c.App.Writer, bashCompletion)
			case "zsh":
				fmt.Fprint(c.App.Writer, zshCompletion)
			default:
				return &runtime.UsageError{Msg: "fleet completion: say bash or zsh"}
			}
			return nil
		},
	}
}
