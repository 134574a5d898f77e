# fish completion for mdm-devsim(1).  Hand-written; tests/cmd/docs.t fails
# when an option or command that "mdm-devsim [CMD] --list-options" or
# "mdm-devsim --list-commands" prints is missing here.

set -l commands enroll run list bench
set -l no_command "not __fish_seen_subcommand_from $commands"

complete -c mdm-devsim -f

# Global options.
complete -c mdm-devsim -s h -l help -d 'Show help and exit'
complete -c mdm-devsim -s V -l version -d 'Show the version and exit'
complete -c mdm-devsim -s q -l quiet -d 'Print errors only'
complete -c mdm-devsim -s v -l verbose -d 'Say more'
complete -c mdm-devsim -l state-dir -x -a '(__fish_complete_directories)' -d 'State directory (unused)'
complete -c mdm-devsim -l json -d 'Print records as JSON Lines'
complete -c mdm-devsim -s 0 -l null -d 'NUL-terminated records and input'

# Commands.
complete -c mdm-devsim -n $no_command -a enroll -d 'Enroll new devices over SCEP and check in'
complete -c mdm-devsim -n $no_command -a run -d 'Answer the server\'s commands'
complete -c mdm-devsim -n $no_command -a list -d 'List the simulated devices'
complete -c mdm-devsim -n $no_command -a bench -d 'Enroll, one session each, print rates'

# Shared by the commands.
complete -c mdm-devsim -n "__fish_seen_subcommand_from $commands" -l dir -x -a '(__fish_complete_directories)' -d 'Devices directory'
complete -c mdm-devsim -n '__fish_seen_subcommand_from enroll run bench' -s c -l concurrency -x -d 'Devices at work at once'
complete -c mdm-devsim -n '__fish_seen_subcommand_from enroll run bench' -l server-ca -r -F -d 'Trust this CA for https'
complete -c mdm-devsim -n '__fish_seen_subcommand_from enroll bench' -l url -r -F -d 'Enrollment profile URL or file'
complete -c mdm-devsim -n '__fish_seen_subcommand_from enroll bench' -s n -l count -x -d 'Devices to enroll'
complete -c mdm-devsim -n '__fish_seen_subcommand_from enroll bench' -l mtls -d 'Identify with a TLS client certificate'
complete -c mdm-devsim -n '__fish_seen_subcommand_from enroll bench' -l sign -d 'Always sign with Mdm-Signature'
complete -c mdm-devsim -n '__fish_seen_subcommand_from enroll bench' -l key-bits -x -a '2048 3072 4096' -d 'RSA key size'
complete -c mdm-devsim -n '__fish_seen_subcommand_from run bench' -l notnow-rate -x -d 'Probability of NotNow'
complete -c mdm-devsim -n '__fish_seen_subcommand_from run bench' -l error-rate -x -d 'Probability of Error'

# enroll
complete -c mdm-devsim -n '__fish_seen_subcommand_from enroll' -l profile-ca -r -F -d 'Require a profile signed under this CA'
complete -c mdm-devsim -n '__fish_seen_subcommand_from enroll' -l challenge -x -d 'SCEP challenge to send instead'

# run
complete -c mdm-devsim -n '__fish_seen_subcommand_from run' -l once -d 'One session per device, then stop'
complete -c mdm-devsim -n '__fish_seen_subcommand_from run' -l interval -x -d 'Between polls'
complete -c mdm-devsim -n '__fish_seen_subcommand_from run' -x -a '(mdm-devsim list 2>/dev/null | cut -f1)'
