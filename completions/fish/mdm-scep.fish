# fish completion for mdm-scep(8).  Hand-written; tests/cmd/docs.t fails
# when an option or command that "mdm-scep [CMD] --list-options" or
# "mdm-scep --list-commands" prints is missing here.

set -l commands serve challenge revoke crl list ra-init
set -l no_command "not __fish_seen_subcommand_from $commands"

# No file names unless a command or option asks for them.
complete -c mdm-scep -f

# Global options, before or after the command.
complete -c mdm-scep -s h -l help -d 'Show help and exit'
complete -c mdm-scep -s V -l version -d 'Show the version and exit'
complete -c mdm-scep -s q -l quiet -d 'Print errors only'
complete -c mdm-scep -s v -l verbose -d 'Say more (-v logs every request)'
complete -c mdm-scep -l state-dir -x -a '(__fish_complete_directories)' -d 'State directory'
complete -c mdm-scep -l json -d 'Print records as JSON Lines'
complete -c mdm-scep -s 0 -l null -d 'NUL-terminated records and input'

# Commands.
complete -c mdm-scep -n $no_command -a serve -d 'Serve SCEP over HTTP at /scep'
complete -c mdm-scep -n $no_command -a challenge -d 'Print a new one-time challenge password'
complete -c mdm-scep -n $no_command -a revoke -d 'Revoke issued certificates by serial'
complete -c mdm-scep -n $no_command -a crl -d 'Write the certificate revocation list (DER)'
complete -c mdm-scep -n $no_command -a list -d 'List the certificates the CA issued'
complete -c mdm-scep -n $no_command -a ra-init -d 'Make an RA certificate and key for the CA'

# serve
complete -c mdm-scep -n '__fish_seen_subcommand_from serve' -l listen -x -a '127.0.0.1:9001 [::1]:9001 :9001' -d 'Address and port to listen on'
complete -c mdm-scep -n '__fish_seen_subcommand_from serve' -l challenge -x -d 'Static challenge password'
complete -c mdm-scep -n '__fish_seen_subcommand_from serve' -l challenge-file -r -F -d 'Read the static challenge from FILE'
complete -c mdm-scep -n '__fish_seen_subcommand_from serve' -l validity-days -x -d 'Validity of issued certificates in days'
complete -c mdm-scep -n '__fish_seen_subcommand_from serve' -l min-key-bits -x -a '1024 2048 3072 4096' -d 'Smallest RSA key accepted'
complete -c mdm-scep -n '__fish_seen_subcommand_from serve' -l allow-subject -x -d 'Issue only to subjects matching this regex'
complete -c mdm-scep -n '__fish_seen_subcommand_from serve' -l csr-verify-exec -r -F -d 'Program that approves each CSR'
complete -c mdm-scep -n '__fish_seen_subcommand_from serve' -l threads -x -d 'Worker threads'
complete -c mdm-scep -n '__fish_seen_subcommand_from serve' -l max-body -x -d 'Largest request body in bytes'
complete -c mdm-scep -n '__fish_seen_subcommand_from serve' -l timeout -x -d 'Close connections idle this long'
complete -c mdm-scep -n '__fish_seen_subcommand_from serve' -l port-file -r -F -d 'Write the port to FILE'

# challenge
complete -c mdm-scep -n '__fish_seen_subcommand_from challenge' -l ttl -x -d 'How long the challenge stays valid (like 1h)'

# revoke: serials of certificates not revoked yet
complete -c mdm-scep -n '__fish_seen_subcommand_from revoke' -x -a '(mdm-scep list 2>/dev/null | awk -F "\t" \'$4 == "" {print $1}\')'

# crl
complete -c mdm-scep -n '__fish_seen_subcommand_from crl' -s o -l output -r -F -d 'Write the CRL to FILE'
complete -c mdm-scep -n '__fish_seen_subcommand_from crl' -l days -x -d 'Days until the next update'

# list
complete -c mdm-scep -n '__fish_seen_subcommand_from list' -l revoked -d 'Only revoked certificates'
complete -c mdm-scep -n '__fish_seen_subcommand_from list' -l expiring-within -x -d 'Only certificates expiring within DAYS days'

# ra-init
complete -c mdm-scep -n '__fish_seen_subcommand_from ra-init' -l days -x -d 'Validity of the RA certificate in days'
complete -c mdm-scep -n '__fish_seen_subcommand_from ra-init' -l force -d 'Replace the RA that is there'
