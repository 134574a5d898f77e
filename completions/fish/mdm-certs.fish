# fish completion for mdm-certs(1).  Hand-written; tests/cmd/docs.t fails
# when an option or command that "mdm-certs [CMD] --list-options" or
# "mdm-certs --list-commands" prints is missing here.

set -l commands init list sign-profile verify-profile push-csr push-import dep-keypair enrollment-profile
set -l no_command "not __fish_seen_subcommand_from $commands"

# No file names unless a command or option asks for them.
complete -c mdm-certs -f

# Global options, before or after the command.
complete -c mdm-certs -s h -l help -d 'Show help and exit'
complete -c mdm-certs -s V -l version -d 'Show the version and exit'
complete -c mdm-certs -s q -l quiet -d 'Print errors only'
complete -c mdm-certs -s v -l verbose -d 'Say more (repeat for more)'
complete -c mdm-certs -l state-dir -x -a '(__fish_complete_directories)' -d 'State directory'
complete -c mdm-certs -l json -d 'Print records as JSON Lines'
complete -c mdm-certs -s 0 -l null -d 'NUL-terminated records and input'

# Commands.
complete -c mdm-certs -n $no_command -a init -d 'Create the state directory, CA, TLS and signing certificates'
complete -c mdm-certs -n $no_command -a list -d 'List the certificates and when they expire'
complete -c mdm-certs -n $no_command -a sign-profile -d 'Sign a configuration profile (CMS)'
complete -c mdm-certs -n $no_command -a verify-profile -d 'Check a signed profile and extract it'
complete -c mdm-certs -n $no_command -a push-csr -d 'Make the APNs push certificate request'
complete -c mdm-certs -n $no_command -a push-import -d 'Install the push certificate from the Apple portal'
complete -c mdm-certs -n $no_command -a dep-keypair -d 'Make the key pair for an Apple Business Manager token'
complete -c mdm-certs -n $no_command -a enrollment-profile -d 'Write the profile that enrolls a device'

# init
complete -c mdm-certs -n '__fish_seen_subcommand_from init' -l hostname -x -a '(__fish_print_hostnames)' -d 'DNS name or address for the TLS certificate'
complete -c mdm-certs -n '__fish_seen_subcommand_from init' -l organization -x -d 'Organization in the certificate subjects'

# list
complete -c mdm-certs -n '__fish_seen_subcommand_from list' -l expiring-within -x -d 'Only certificates expiring within DAYS days'
complete -c mdm-certs -n '__fish_seen_subcommand_from list' -l kind -x -a 'ca tls signing push dep device' -d 'Only certificates of this kind'

# sign-profile
complete -c mdm-certs -n '__fish_seen_subcommand_from sign-profile' -s o -l output -r -F -d 'Write the signed profile to FILE'
complete -c mdm-certs -n '__fish_seen_subcommand_from sign-profile' -l signer -r -F -d 'Signer certificate (PEM)'
complete -c mdm-certs -n '__fish_seen_subcommand_from sign-profile' -l key -r -F -d 'Private key of the signer (PEM)'

# verify-profile
complete -c mdm-certs -n '__fish_seen_subcommand_from verify-profile' -s o -l output -r -F -d 'Write the unsigned content to FILE'
complete -c mdm-certs -n '__fish_seen_subcommand_from verify-profile' -l ca -r -F -d 'Trust this CA certificate (PEM)'

# push-csr
complete -c mdm-certs -n '__fish_seen_subcommand_from push-csr' -l email -x -d 'Email address of the Apple Account'
complete -c mdm-certs -n '__fish_seen_subcommand_from push-csr' -l common-name -x -d 'Common name of the request'
complete -c mdm-certs -n '__fish_seen_subcommand_from push-csr' -l country -x -d 'Two-letter country code'
complete -c mdm-certs -n '__fish_seen_subcommand_from push-csr' -l vendor-cert -r -F -d 'MDM vendor certificate (PEM)'
complete -c mdm-certs -n '__fish_seen_subcommand_from push-csr' -l vendor-key -r -F -d 'MDM vendor private key (PEM)'
complete -c mdm-certs -n '__fish_seen_subcommand_from push-csr' -l vendor-chain -r -F -d 'WWDR and Apple Root CA certificates (PEM)'
complete -c mdm-certs -n '__fish_seen_subcommand_from push-csr' -s o -l output -r -F -d 'Write the request to FILE'

# push-import
complete -c mdm-certs -n '__fish_seen_subcommand_from push-import' -l password -x -d 'Password of the PKCS#12 file'
complete -c mdm-certs -n '__fish_seen_subcommand_from push-import' -l password-file -r -F -d 'Read the PKCS#12 password from FILE'
complete -c mdm-certs -n '__fish_seen_subcommand_from push-import' -l force -d 'Add a certificate for a new topic beside the old one'
complete -c mdm-certs -n '__fish_seen_subcommand_from push-import' -s n -l dry-run -d 'Check the certificate and print its topic, store nothing'

# dep-keypair
complete -c mdm-certs -n '__fish_seen_subcommand_from dep-keypair' -l days -x -d 'Validity of the certificate in days'

# enrollment-profile
complete -c mdm-certs -n '__fish_seen_subcommand_from enrollment-profile' -l url -x -d 'Base URL devices reach the server at'
complete -c mdm-certs -n '__fish_seen_subcommand_from enrollment-profile' -l scep-url -x -d 'SCEP URL (default: URL/scep)'
complete -c mdm-certs -n '__fish_seen_subcommand_from enrollment-profile' -l challenge -x -d 'Static SCEP challenge'
complete -c mdm-certs -n '__fish_seen_subcommand_from enrollment-profile' -l challenge-file -r -F -d 'Read the static challenge from FILE'
complete -c mdm-certs -n '__fish_seen_subcommand_from enrollment-profile' -l challenge-ttl -x -d 'How long the one-time challenge works'
complete -c mdm-certs -n '__fish_seen_subcommand_from enrollment-profile' -l topic -x -d 'Push topic'
complete -c mdm-certs -n '__fish_seen_subcommand_from enrollment-profile' -l organization -x -d 'Organization in the profile and device subjects'
complete -c mdm-certs -n '__fish_seen_subcommand_from enrollment-profile' -l no-sign-message -d 'Devices authenticate by TLS client certificate only'
complete -c mdm-certs -n '__fish_seen_subcommand_from enrollment-profile' -l unsigned -d 'Write the XML profile without signing it'
complete -c mdm-certs -n '__fish_seen_subcommand_from enrollment-profile' -s o -l output -r -F -d 'Write the profile to FILE'

# Operands that are files: the profile, or the certificate and key.
complete -c mdm-certs -n '__fish_seen_subcommand_from sign-profile verify-profile push-import' -F
