def greet(name)
  puts "hi #{name}" # out
end
