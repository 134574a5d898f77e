# fish completion for mdm-push(1).  Hand-written; tests/cmd/docs.t fails
# when an option that "mdm-push --list-options" prints is missing here.
# mdm-push has no commands; its operands are enrollment ids.

# No file names unless an option asks for them.
complete -c mdm-push -f

# The global options of every mdm tool.
complete -c mdm-push -s h -l help -d 'Show help and exit'
complete -c mdm-push -s V -l version -d 'Show the version and exit'
complete -c mdm-push -s q -l quiet -d 'Print errors only'
complete -c mdm-push -s v -l verbose -d 'Say more'
complete -c mdm-push -l state-dir -x -a '(__fish_complete_directories)' -d 'State directory'
complete -c mdm-push -l json -d 'Print records as JSON Lines'
complete -c mdm-push -s 0 -l null -d 'NUL-terminated records and ids on stdin'

# Its own.
complete -c mdm-push -l pending -d 'Push every enabled enrollment with queued commands'
complete -c mdm-push -l stale -x -a '1d 7d 30d' -d 'Push every enabled enrollment not seen for this long'
complete -c mdm-push -l apns-url -x -d 'APNs server, https://host[:port]'
complete -c mdm-push -l sandbox -d 'Use the APNs sandbox server'
complete -c mdm-push -l apns-ca -r -F -d 'Trust this CA for the APNs server'
complete -c mdm-push -l priority -x -a '5 10' -d 'apns-priority'
complete -c mdm-push -l expiration -x -a '1h 1d 0' -d 'Keep the push this long for an offline device'
complete -c mdm-push -l max-streams -x -d 'Pushes in flight per topic at most'
